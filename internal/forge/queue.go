package forge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// job is one update to send: a status, or a pull request comment composed when it is sent
// (from the run's events, so a restart composes the same comment).
type job struct {
	Seq      uint64    `json:"seq"` // order within its run's queue
	RunID    string    `json:"run_id"`
	Repo     string    `json:"repo"`
	Status   *Status   `json:"status,omitempty"`
	PR       int       `json:"pr,omitempty"` // set for a comment
	Attempts int       `json:"attempts"`
	NotAt    time.Time `json:"not_before,omitzero"`
}

func (j *job) what() string {
	if j.Status != nil {
		return "status " + j.Status.Context + " " + j.Status.State
	}
	return fmt.Sprintf("comment on pull request %d", j.PR)
}

// queue keeps each run's jobs as files DIR/RUN/SEQ.json: written before they are sent and
// removed once sent or dropped, so a restart sends what was left, in order.
type queue struct{ dir string }

func (q queue) path(j *job) string {
	return filepath.Join(q.dir, j.RunID, fmt.Sprintf("%016d.json", j.Seq))
}

// put writes a job (new, or with its attempts counted) atomically.
func (q queue) put(j *job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	p := q.path(j)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("forge: queue: %w", err)
	}
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("forge: queue: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("forge: queue: %w", err)
	}
	return nil
}

// done removes a sent or dropped job, and its run's directory once empty.
func (q queue) done(j *job) {
	_ = os.Remove(q.path(j))
	_ = os.Remove(filepath.Dir(q.path(j))) // fails while other jobs remain
}

// load reads every queued job, by run and in order. An unreadable file is dropped and
// said, not fatal: one torn write must not stop reporting.
func (q queue) load() (map[string][]*job, []error) {
	out := map[string][]*job{}
	var errs []error
	runs, err := os.ReadDir(q.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, []error{err}
	}
	for _, r := range runs {
		if !r.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(q.dir, r.Name(), "*.json"))
		slices.Sort(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			var j job
			if err == nil {
				err = json.Unmarshal(b, &j)
			}
			if err != nil || j.RunID != r.Name() || !strings.HasSuffix(f, fmt.Sprintf("%016d.json", j.Seq)) {
				errs = append(errs, fmt.Errorf("forge: queue: %s is not a queued update (%v): dropped", f, err))
				_ = os.Remove(f)
				continue
			}
			out[j.RunID] = append(out[j.RunID], &j)
		}
	}
	return out, errs
}
