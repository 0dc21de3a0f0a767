package sqlite

import (
	"fmt"
	"slices"
	"testing"
)

// TestTakeBatch: a batch holds the leader's write, then the others by rank (creations,
// stage starts, the rest), each rank in arrival order, never more than maxBatch; what it
// leaves waits in order.
func TestTakeBatch(t *testing.T) {
	t.Parallel()
	kinds := [ranks]string{"c", "s", "p"}
	for _, c := range []struct {
		name   string
		queued [ranks]int // creations, starts, progress waiting, the leader's included
		leader int        // the leader's rank; it heads that queue
		taken  [ranks]int // how many of each the batch takes
	}{
		{"few of each, a progress leader", [ranks]int{2, 3, 5}, rankProgress, [ranks]int{2, 3, 5}},
		{"few of each, a start leader", [ranks]int{2, 3, 5}, rankStart, [ranks]int{2, 3, 5}},
		{"more progress than a batch", [ranks]int{1, 3, 2 * maxBatch}, rankProgress, [ranks]int{1, 3, maxBatch - 4}},
		{"more starts than a batch, a progress leader", [ranks]int{0, 2 * maxBatch, 10}, rankProgress, [ranks]int{0, maxBatch - 1, 1}},
		{"more starts than a batch, a start leader", [ranks]int{0, 2 * maxBatch, 10}, rankStart, [ranks]int{0, maxBatch, 0}},
		{"creations go before starts", [ranks]int{5, 2 * maxBatch, 10}, rankStart, [ranks]int{5, maxBatch - 5, 0}},
		{"creations go before starts, a progress leader", [ranks]int{5, 2 * maxBatch, 10}, rankProgress, [ranks]int{5, maxBatch - 6, 1}},
		{"more creations than a batch", [ranks]int{2 * maxBatch, 3, 3}, rankCreate, [ranks]int{maxBatch, 0, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &Store{}
			var names [ranks][]string
			for rank, n := range c.queued {
				for i := range n {
					name := fmt.Sprintf("%s%d", kinds[rank], i)
					s.writeQueues[rank] = append(s.writeQueues[rank], &writeReq{rank: rank, err: fmt.Errorf("%s", name)}) // err names it
					names[rank] = append(names[rank], name)
				}
			}
			var batch []string
			for _, r := range s.takeBatchLocked(s.writeQueues[c.leader][0]) {
				batch = append(batch, r.err.Error())
			}
			want := []string{names[c.leader][0]}
			for rank := range ranks {
				from := 0
				if rank == c.leader {
					from = 1
				}
				want = append(want, names[rank][from:c.taken[rank]]...)
			}
			if !slices.Equal(batch, want) {
				t.Fatalf("batch %v,\nwant %v", batch, want)
			}
			for rank := range ranks {
				var left []string
				for _, r := range s.writeQueues[rank] {
					left = append(left, r.err.Error())
				}
				if wantLeft := names[rank][c.taken[rank]:]; fmt.Sprint(left) != fmt.Sprint(wantLeft) {
					t.Errorf("%s left %v, want %v", kinds[rank], left, wantLeft)
				}
			}
		})
	}
}
