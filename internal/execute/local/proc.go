package local

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// killDescendants sends SIGKILL to every live descendant of pid and repeats until none is
// left, so a process forked while a round was running is caught by the next. It relies on pid
// being a child subreaper while it runs: a process that double-forked or called setsid is
// still a descendant then, which is what makes the process-group sandbox hold on to daemons
// that left the group. Rounds are bounded so an unkillable process (stuck in the kernel)
// cannot spin it forever.
func killDescendants(pid int) {
	for range 100 {
		kids := descendants(pid)
		if len(kids) == 0 {
			return
		}
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
	}
}

// descendants lists the live (not zombie) processes below pid, read from /proc.
func descendants(pid int) []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	children := make(map[int][]int)
	zombie := make(map[int]bool)
	for _, name := range names {
		p, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		ppid, state, ok := procStat(p)
		if !ok {
			continue
		}
		children[ppid] = append(children[ppid], p)
		if state == 'Z' || state == 'X' {
			zombie[p] = true
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !zombie[c] {
				out = append(out, c)
			}
			queue = append(queue, c)
		}
	}
	return out
}

// procStat reads the parent pid and state of a process. The command name in /proc/PID/stat is
// in parentheses and may itself contain spaces and parentheses, so the fields are read after
// the last ')'.
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(string(f[1]))
	if err != nil {
		return 0, 0, false
	}
	return ppid, f[0][0], true
}

// reapZombies collects every exited child without blocking. The init calls it only while no
// step is running: wait4(-1) would otherwise steal the exit status of the step that os/exec
// is waiting for. Orphans re-parented to the init (it is a subreaper) become its zombies, and
// nothing else would ever collect them.
func reapZombies() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
