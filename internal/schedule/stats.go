package schedule

// Stats is a snapshot of the scheduler's load, for metrics and alerts.
type Stats struct {
	Capacity int // executor slots in all
	Running  int // slots taken
	// Queued counts the ready stages waiting for a slot, by priority class and team.
	Queued map[string]map[string]int
	// RunningByTeam counts the running stages of each team.
	RunningByTeam map[string]int
	ActiveRuns    int // runs not yet finished
}

// QueuedTotal is how many stages wait for a slot.
func (st Stats) QueuedTotal() int {
	n := 0
	for _, teams := range st.Queued {
		for _, c := range teams {
			n += c
		}
	}
	return n
}

// Stats reports the scheduler's load now. It may be called from any goroutine.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Capacity: s.cfg.Capacity, Running: s.cfg.Capacity - s.free, Queued: map[string]map[string]int{},
		RunningByTeam: make(map[string]int, len(s.teamRunning)), ActiveRuns: len(s.runs)}
	for rank, teams := range s.queue.byClass {
		for team, list := range teams {
			if len(list) == 0 {
				continue
			}
			if st.Queued[classes[rank]] == nil {
				st.Queued[classes[rank]] = map[string]int{}
			}
			st.Queued[classes[rank]][team] = len(list)
		}
	}
	for team, n := range s.teamRunning {
		st.RunningByTeam[team] = n
	}
	return st
}
