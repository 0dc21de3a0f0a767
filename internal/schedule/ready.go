package schedule

import "iter"

// readyQueue holds the queued stages by class and then by team, each list in enqueue order.
// Dispatch picks the best head among the lists of the highest class that has a team under
// its quota: O(classes × teams) per pick, where scanning every queued stage (as a flat list
// did) cost O(queued) and, with a thousand stages queued behind a small capacity, an eighth
// of the scheduler's CPU, all of it under s.mu.
type readyQueue struct {
	byClass [4]map[string][]item // index: classRank; team → its queued stages of that class
	n       int
}

// push adds an item; its order must be above every queued item's (s.order counts up).
func (q *readyQueue) push(it item) {
	m := q.byClass[it.class]
	if m == nil {
		m = map[string][]item{}
		q.byClass[it.class] = m
	}
	m[it.team] = append(m[it.team], it)
	q.n++
}

// pop removes and returns the next stage to start, or false: the highest class first;
// inside a class the team running the fewest stages (fair share), then the oldest; never a
// stage of a team at its quota. It picks the same stage as comparing every queued one
// would: inside a (class, team) list the head is the oldest, and the other keys are the
// list's own.
func (q *readyQueue) pop(atQuota func(team string) bool, running func(team string) int) (item, bool) {
	for _, m := range q.byClass {
		var best []item
		bestRunning := 0
		for team, list := range m {
			if atQuota(team) {
				continue
			}
			r := running(team)
			if best == nil || r < bestRunning || (r == bestRunning && list[0].order < best[0].order) {
				best, bestRunning = list, r
			}
		}
		if best == nil {
			continue
		}
		it := best[0]
		if len(best) == 1 {
			delete(m, it.team)
		} else {
			best[0] = item{} // let the strings go
			m[it.team] = best[1:]
		}
		q.n--
		return it, true
	}
	return item{}, false
}

// all yields every queued stage, by class; inside a class in no set order.
func (q *readyQueue) all() iter.Seq[*item] {
	return func(yield func(*item) bool) {
		for _, m := range q.byClass {
			for _, list := range m {
				for i := range list {
					if !yield(&list[i]) {
						return
					}
				}
			}
		}
	}
}

// queued is how many stages of a team are queued.
func (q *readyQueue) queued(team string) int {
	n := 0
	for _, m := range q.byClass {
		n += len(m[team])
	}
	return n
}
