package schedule

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestReadyQueuePicksAsAFullScan checks readyQueue against the rule it implements, stated
// as a scan over every queued stage (what dispatch did before): random pushes and pops,
// with random running counts and quotas, must pick the same stage each time.
func TestReadyQueuePicksAsAFullScan(t *testing.T) {
	t.Parallel()
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		teams := []string{"a", "b", "c", "d", "e"}[:1+rng.IntN(5)]
		running := map[string]int{}
		quota := map[string]int{}
		for _, tm := range teams {
			running[tm] = rng.IntN(3)
			quota[tm] = rng.IntN(4) // 0: none
		}
		atQuota := func(tm string) bool { return quota[tm] > 0 && running[tm] >= quota[tm] }
		var q readyQueue
		var flat []item
		var order uint64
		for step := range 400 {
			if rng.IntN(3) > 0 {
				order++
				it := item{runID: fmt.Sprint(order), class: rng.IntN(4), team: teams[rng.IntN(len(teams))], order: order}
				q.push(it)
				flat = append(flat, it)
				continue
			}
			best := -1
			for i, it := range flat {
				if atQuota(it.team) {
					continue
				}
				if best < 0 || scanBefore(it, flat[best], running) {
					best = i
				}
			}
			got, ok := q.pop(atQuota, func(tm string) int { return running[tm] })
			if (best >= 0) != ok {
				t.Fatalf("seed %d step %d: pop = %v, the scan found %d", seed, step, ok, best)
			}
			if ok {
				if got != flat[best] {
					t.Fatalf("seed %d step %d: pop = %+v, the scan picks %+v", seed, step, got, flat[best])
				}
				flat = append(flat[:best], flat[best+1:]...)
				running[got.team]++
			}
			if rng.IntN(4) == 0 { // a stage finishes somewhere
				tm := teams[rng.IntN(len(teams))]
				running[tm] = max(0, running[tm]-1)
			}
			if q.n != len(flat) {
				t.Fatalf("seed %d step %d: %d queued, want %d", seed, step, q.n, len(flat))
			}
		}
	}
}

// scanBefore is the order of the full scan: class, then the team running fewer, then age.
func scanBefore(x, y item, running map[string]int) bool {
	if x.class != y.class {
		return x.class < y.class
	}
	if x.team != y.team && running[x.team] != running[y.team] {
		return running[x.team] < running[y.team]
	}
	return x.order < y.order
}
