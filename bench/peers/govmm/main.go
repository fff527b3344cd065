// govmm-bench: the govmm peer of bench/run. A long-lived manager process, as
// Kata's runtime is: it launches QEMU through govmm's LaunchQemu (Kata's way:
// -daemonize, a QMP server socket, a pidfile), keeps one govmm QMP connection
// per VM, and answers one JSON request per stdin line with one JSON line:
//
//	{"op":"launch","vm":{...}}        -> {"ns":N,"pid":P}   LaunchQemu..first query-status reply
//	{"op":"launch-many","vms":[...]}  -> {"total_ns":N,"ns":[...],"pids":[...]} (concurrently)
//	{"op":"rtt","id":ID,"n":N}        -> {"ns":[...]}       N x ExecuteQueryStatus
//	{"op":"stop","id":ID}             -> {"ns":N}           ExecuteQuit..process gone
//	{"op":"rss"}                      -> {"rss_kb":N}       this manager's VmRSS
//	{"op":"exit"}                     -> stops every VM left, exits
//
// Errors: {"error":"..."}. Built offline against Debian's
// golang-github-kata-containers-govmm-dev (GOPATH mode, see bench/run).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/kata-containers/govmm/qemu"
)

type vmSpec struct {
	ID      string `json:"id"`
	Dir     string `json:"dir"` // private directory: qmp.sock, pid
	Qemu    string `json:"qemu"`
	Machine string `json:"machine"`
	Accel   string `json:"accel"`
	CPU     string `json:"cpu"`
	Memory  string `json:"memory"` // "512M"
	Kernel  string `json:"kernel"`
	Initrd  string `json:"initrd"`
	Append  string `json:"append"`
	Paused  bool   `json:"paused"`
}

type vm struct {
	spec vmSpec
	pid  int
	qmp  *qemu.QMP
	disc chan struct{}
}

type request struct {
	Op  string   `json:"op"`
	VM  vmSpec   `json:"vm"`
	VMs []vmSpec `json:"vms"`
	ID  string   `json:"id"`
	N   int      `json:"n"`
}

var (
	mu  sync.Mutex
	vms = map[string]*vm{}
)

func launch(s vmSpec) (*vm, int64, error) {
	sock := filepath.Join(s.Dir, "qmp.sock")
	pidfile := filepath.Join(s.Dir, "pid")
	cfg := qemu.Config{
		Path:       s.Qemu,
		Name:       s.ID,
		CPUModel:   s.CPU,
		Machine:    qemu.Machine{Type: s.Machine, Acceleration: s.Accel},
		QMPSockets: []qemu.QMPSocket{{Type: qemu.Unix, Name: sock, Server: true, NoWait: true}},
		Memory:     qemu.Memory{Size: s.Memory},
		SMP:        qemu.SMP{CPUs: 1},
		Kernel:     qemu.Kernel{Path: s.Kernel, InitrdPath: s.Initrd, Params: s.Append},
		Knobs: qemu.Knobs{NoUserConfig: true, NoDefaults: true, NoGraphic: true,
			Daemonize: true, Stopped: s.Paused, NoReboot: true},
		PidFile: pidfile,
	}
	t0 := time.Now()
	if out, err := qemu.LaunchQemu(cfg, nil); err != nil {
		return nil, 0, fmt.Errorf("LaunchQemu: %v: %s", err, out)
	}
	disc := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, _, err := qemu.QMPStart(ctx, sock, qemu.QMPConfig{}, disc)
	if err != nil {
		return nil, 0, fmt.Errorf("QMPStart: %v", err)
	}
	if err := q.ExecuteQMPCapabilities(ctx); err != nil {
		q.Shutdown()
		return nil, 0, fmt.Errorf("qmp_capabilities: %v", err)
	}
	if _, err := q.ExecuteQueryStatus(ctx); err != nil {
		q.Shutdown()
		return nil, 0, fmt.Errorf("query-status: %v", err)
	}
	ns := time.Since(t0).Nanoseconds()
	b, err := os.ReadFile(pidfile)
	if err != nil {
		q.Shutdown()
		return nil, 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		q.Shutdown()
		return nil, 0, fmt.Errorf("pidfile: %v", err)
	}
	return &vm{spec: s, pid: pid, qmp: q, disc: disc}, ns, nil
}

// waitGone waits until process pid has exited (pidfd_open + poll), at most d.
func waitGone(pid int, d time.Duration) error {
	fd, _, e := syscall.Syscall(434 /* SYS_pidfd_open */, uintptr(pid), 0, 0)
	if e == syscall.ESRCH {
		return nil
	}
	if e != 0 {
		return fmt.Errorf("pidfd_open %d: %v", pid, e)
	}
	defer syscall.Close(int(fd))
	type pollFd struct {
		fd      int32
		events  int16
		revents int16
	}
	p := pollFd{fd: int32(fd), events: 1 /* POLLIN */}
	deadline := time.Now().Add(d)
	for {
		ms := time.Until(deadline).Milliseconds()
		if ms <= 0 {
			return fmt.Errorf("process %d still there after %v", pid, d)
		}
		r, _, e := syscall.Syscall(syscall.SYS_POLL, uintptr(unsafe.Pointer(&p)), 1, uintptr(ms))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return fmt.Errorf("poll: %v", e)
		}
		if r > 0 {
			return nil
		}
	}
}

func stop(v *vm) (int64, error) {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// QEMU may close the connection before or after its reply: an error here
	// is not a failure as long as the process goes away.
	_ = v.qmp.ExecuteQuit(ctx)
	err := waitGone(v.pid, 30*time.Second)
	ns := time.Since(t0).Nanoseconds()
	v.qmp.Shutdown()
	<-v.disc
	return ns, err
}

func rssKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return -1
}

func handle(r request) interface{} {
	switch r.Op {
	case "launch":
		v, ns, err := launch(r.VM)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		mu.Lock()
		vms[r.VM.ID] = v
		mu.Unlock()
		return map[string]int64{"ns": ns, "pid": int64(v.pid)}
	case "launch-many":
		n := len(r.VMs)
		ns := make([]int64, n)
		pids := make([]int, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := range r.VMs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				v, d, err := launch(r.VMs[i])
				if err != nil {
					errs[i] = err
					return
				}
				ns[i], pids[i] = d, v.pid
				mu.Lock()
				vms[v.spec.ID] = v
				mu.Unlock()
			}(i)
		}
		wg.Wait()
		total := time.Since(t0).Nanoseconds()
		for _, err := range errs {
			if err != nil {
				return map[string]string{"error": err.Error()}
			}
		}
		return map[string]interface{}{"total_ns": total, "ns": ns, "pids": pids}
	case "rtt":
		mu.Lock()
		v := vms[r.ID]
		mu.Unlock()
		if v == nil {
			return map[string]string{"error": "no vm " + r.ID}
		}
		ns := make([]int64, r.N)
		ctx := context.Background()
		for i := 0; i < r.N; i++ {
			t0 := time.Now()
			if _, err := v.qmp.ExecuteQueryStatus(ctx); err != nil {
				return map[string]string{"error": err.Error()}
			}
			ns[i] = time.Since(t0).Nanoseconds()
		}
		return map[string][]int64{"ns": ns}
	case "stop":
		mu.Lock()
		v := vms[r.ID]
		delete(vms, r.ID)
		mu.Unlock()
		if v == nil {
			return map[string]string{"error": "no vm " + r.ID}
		}
		ns, err := stop(v)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		return map[string]int64{"ns": ns}
	case "rss":
		return map[string]int64{"rss_kb": rssKB()}
	}
	return map[string]string{"error": "unknown op " + r.Op}
}

func stopAll() {
	mu.Lock()
	defer mu.Unlock()
	for id, v := range vms {
		_, _ = stop(v)
		delete(vms, id)
	}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var r request
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			_ = out.Encode(map[string]string{"error": err.Error()})
			continue
		}
		if r.Op == "exit" {
			break
		}
		_ = out.Encode(handle(r))
	}
	stopAll()
}
