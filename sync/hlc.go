package sync

import (
	"fmt"
	"strconv"
	"strings"
)

// Stamp is a hybrid logical clock stamp: wall-clock milliseconds, a
// counter that orders stamps within one millisecond (and moves a change
// past the version it overwrote when clocks disagree), and the device that
// made the change, which breaks ties. Stamps are sealed inside records;
// the server never sees them.
type Stamp struct {
	Wall   int64
	Count  int64
	Device string
}

// String is the stamp's sortable text: comparing two strings compares the
// stamps.
func (s Stamp) String() string {
	return fmt.Sprintf("%015d.%06d.%s", s.Wall, s.Count, s.Device)
}

// ParseStamp reads what String wrote.
func ParseStamp(s string) (Stamp, error) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) != 3 {
		return Stamp{}, fmt.Errorf("malformed clock stamp")
	}
	w, err1 := strconv.ParseInt(parts[0], 10, 64)
	c, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || parts[2] == "" {
		return Stamp{}, fmt.Errorf("malformed clock stamp")
	}
	return Stamp{Wall: w, Count: c, Device: parts[2]}, nil
}

// After reports whether s is later than t.
func (s Stamp) After(t Stamp) bool {
	if s.Wall != t.Wall {
		return s.Wall > t.Wall
	}
	if s.Count != t.Count {
		return s.Count > t.Count
	}
	return s.Device > t.Device
}

// next is the stamp of a local change made at wall time ms (Unix
// milliseconds) over a record whose known stamp is base (zero when new):
// the change's own time, moved just past base when this device's clock is
// behind the one that wrote base. So a change always wins over the version
// it was made on, and otherwise the later edit wins.
func next(base Stamp, ms int64, device string) Stamp {
	if ms > base.Wall {
		return Stamp{Wall: ms, Device: device}
	}
	return Stamp{Wall: base.Wall, Count: base.Count + 1, Device: device}
}
