package load

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a server process under test: started by Start, ended by Stop.
// Its stderr (and stdout) go to a log file, whose end is quoted when the
// process fails to come up.
type Proc struct {
	Name string
	Addr string // host:port it listens on
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// Start runs cmd (env nil: this process's environment) with its output in
// logFile, and waits until it listens on addr; the process is killed when
// this one dies (Pdeathsig).
func Start(name, addr string, cmd *exec.Cmd, env []string, logFile string) (*Proc, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if env != nil {
		cmd.Env = env
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &Proc{Name: name, Addr: addr, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	if err := p.waitListening(15 * time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// Pid is the process id, for ProcCPU and ProcMem.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stop ends the process with SIGTERM, then SIGKILL after 10 s.
func (p *Proc) Stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *Proc) waitListening(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before listening on %s: %s", p.Name, p.Addr, p.logTail())
		default:
		}
		if c, err := net.DialTimeout("tcp", p.Addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not listen on %s within %s: %s", p.Name, p.Addr, limit, p.logTail())
}

func (p *Proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 1000 {
		b = b[len(b)-1000:]
	}
	if len(b) == 0 {
		return "no output"
	}
	return strings.TrimSpace(string(b))
}

// FreePort returns a loopback address nothing listens on right now.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ProcCPU is the user+system CPU time pid has used (0 for pid 0 or an
// unreadable /proc entry).
func ProcCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

// PostgresCPU is the CPU time of every process named postgres (a local
// PostgreSQL server's backends); 0 when there is none.
func PostgresCPU() time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			total += ProcCPU(pid)
		}
	}
	return total
}

// MachineCPU is the busy CPU time of the whole machine (all CPUs).
func MachineCPU() time.Duration {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	var busy int64
	for i, v := range strings.Fields(sc.Text())[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// ProcMem returns VmRSS and VmHWM (peak RSS) of pid, in MiB.
func ProcMem(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		var kb float64
		switch k {
		case "VmRSS":
			fmt.Sscanf(v, "%f", &kb)
			rss = kb / 1024
		case "VmHWM":
			fmt.Sscanf(v, "%f", &kb)
			hwm = kb / 1024
		}
	}
	if hwm == 0 {
		return 0, 0, errors.New("no VmHWM in /proc status")
	}
	return rss, hwm, nil
}

// CPUModel is the first "model name" of /proc/cpuinfo.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOOS
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
