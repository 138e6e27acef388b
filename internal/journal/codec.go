package journal

import (
	"bytes"
	"errors"
	"hash/crc32"
	"strconv"
	"sync"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Journal line format, version 1. One line per audit record:
//
//	CCCCCCCC 1<TAB>K<TAB>id<TAB>time_us<TAB>request_id<TAB>workspace_id<TAB>agent_id<TAB>agent_name<TAB>
//	credential_id<TAB>credential_name<TAB>method<TAB>host<TAB>path<TAB>status<TAB>decision<TAB>code<TAB>
//	duration_us<TAB>bytes_in<TAB>bytes_out<LF>
//
// CCCCCCCC is the CRC-32C (Castagnoli) of everything between the space and
// the newline, in lowercase hex; K is 'B' for BeginAudit, 'E' for EndAudit.
// Text fields escape backslash, tab, newline and carriage return as \\ \t
// \n \r. A line whose checksum does not match (torn by a crash, or read
// while its owner truncated the file) is skipped; it is never a secret:
// audit events hold none.

const (
	journalVersion = '1'
	kindBegin      = 'B'
	kindEnd        = 'E'
	journalFields  = 19 // version, kind and the 17 event fields
)

// crcTable is built on first use rather than at package init: building it
// is a measurable part of the start-up of every command, and most commands
// never read or write a journal line (go run ./bench/cli).
var crcTable = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

const hexDigits = "0123456789abcdef"

// appendJournalLine appends the encoded line (newline included) for e.
func appendJournalLine(b []byte, kind byte, e *agentkeys.AuditEvent) []byte {
	start := len(b)
	b = append(b, "00000000 "...)
	payload := len(b)
	b = append(b, journalVersion, '\t', kind)
	str := func(s string) {
		b = append(b, '\t')
		b = appendEscaped(b, s)
	}
	num := func(n int64) {
		b = append(b, '\t')
		b = strconv.AppendInt(b, n, 10)
	}
	str(e.ID)
	num(e.Time.UnixMicro())
	str(e.RequestID)
	str(e.WorkspaceID)
	str(e.AgentID)
	str(e.AgentName)
	str(e.CredentialID)
	str(e.CredentialName)
	str(e.Method)
	str(e.Host)
	str(e.Path)
	num(int64(e.Status))
	str(e.Decision)
	str(e.Code)
	num(e.Duration.Microseconds())
	num(e.BytesIn)
	num(e.BytesOut)
	sum := crc32.Checksum(b[payload:], crcTable())
	for i := 7; i >= 0; i-- {
		b[start+i] = hexDigits[sum&0xf]
		sum >>= 4
	}
	return append(b, '\n')
}

func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, c)
		}
	}
	return b
}

func unescape(f []byte) (string, error) {
	if bytes.IndexByte(f, '\\') < 0 {
		return string(f), nil
	}
	out := make([]byte, 0, len(f))
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i == len(f) {
			return "", errBadLine
		}
		switch f[i] {
		case '\\':
			out = append(out, '\\')
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		default:
			return "", errBadLine
		}
	}
	return string(out), nil
}

var errBadLine = errors.New("malformed journal line")

// parseJournalLine decodes one line (without its newline). It returns
// errBadLine when the checksum or the layout is wrong.
func parseJournalLine(line []byte) (kind byte, e agentkeys.AuditEvent, err error) {
	if len(line) < 9 || line[8] != ' ' {
		return 0, e, errBadLine
	}
	want, perr := strconv.ParseUint(string(line[:8]), 16, 32)
	payload := line[9:]
	if perr != nil || uint32(want) != crc32.Checksum(payload, crcTable()) {
		return 0, e, errBadLine
	}
	var fields [journalFields][]byte
	n := 0
	for n < journalFields-1 {
		i := bytes.IndexByte(payload, '\t')
		if i < 0 {
			return 0, e, errBadLine
		}
		fields[n] = payload[:i]
		payload = payload[i+1:]
		n++
	}
	if bytes.IndexByte(payload, '\t') >= 0 {
		return 0, e, errBadLine
	}
	fields[n] = payload
	if len(fields[0]) != 1 || fields[0][0] != journalVersion || len(fields[1]) != 1 {
		return 0, e, errBadLine
	}
	kind = fields[1][0]
	if kind != kindBegin && kind != kindEnd {
		return 0, e, errBadLine
	}
	strs := []*string{&e.ID, nil, &e.RequestID, &e.WorkspaceID, &e.AgentID, &e.AgentName, &e.CredentialID,
		&e.CredentialName, &e.Method, &e.Host, &e.Path, nil, &e.Decision, &e.Code}
	var nums [5]int64 // time, status, duration, bytes in, bytes out
	// numAt maps an event field to its slot in nums (-1: a text field).
	numAt := [journalFields - 2]int8{-1, 0, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, -1, -1, 2, 3, 4}
	for i := 0; i < journalFields-2; i++ {
		f := fields[i+2]
		if k := numAt[i]; k >= 0 {
			v, err := strconv.ParseInt(string(f), 10, 64)
			if err != nil {
				return 0, e, errBadLine
			}
			nums[k] = v
			continue
		}
		s, err := unescape(f)
		if err != nil {
			return 0, e, errBadLine
		}
		*strs[i] = s
	}
	if e.ID == "" {
		return 0, e, errBadLine
	}
	e.Time = fromMicros(nums[0])
	e.Status = int(nums[1])
	e.Duration = time.Duration(nums[2]) * time.Microsecond
	e.DurationMs = float64(nums[2]) / 1000
	e.BytesIn, e.BytesOut = nums[3], nums[4]
	return kind, e, nil
}

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
