package sqlite

import (
	"fmt"
	"testing"
)

// TestTakeBatch: a batch holds the leader's write, then urgent writes, then the others, each
// kind in arrival order, never more than maxBatch; what it leaves waits in order.
func TestTakeBatch(t *testing.T) {
	t.Parallel()
	mk := func(kind string, n int, urgent bool) []*writeReq {
		out := make([]*writeReq, n)
		for i := range out {
			out[i] = &writeReq{urgent: urgent, err: fmt.Errorf("%s%d", kind, i)} // err names it
		}
		return out
	}
	names := func(rs []*writeReq) (out []string) {
		for _, r := range rs {
			out = append(out, r.err.Error())
		}
		return out
	}
	for _, c := range []struct {
		name            string
		normal, urgent  int
		leaderUrgent    bool
		wantUrgentTaken int
		wantNormalTaken int
	}{
		{"few of each, a normal leader", 5, 3, false, 3, 5},
		{"few of each, an urgent leader", 5, 3, true, 3, 5},
		{"more normal than a batch", 2 * maxBatch, 3, false, 3, maxBatch - 3},
		{"more urgent than a batch, a normal leader", 10, 2 * maxBatch, false, maxBatch - 1, 1},
		{"more urgent than a batch, an urgent leader", 10, 2 * maxBatch, true, maxBatch, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &Store{writeQueue: mk("n", c.normal, false), urgentQueue: mk("u", c.urgent, true)}
			normal, urgent := names(s.writeQueue), names(s.urgentQueue)
			leader := s.writeQueue[0]
			if c.leaderUrgent {
				leader = s.urgentQueue[0]
			}
			batch := names(s.takeBatchLocked(leader))
			var want []string
			if c.leaderUrgent {
				want = append(append(want, urgent[:c.wantUrgentTaken]...), normal[:c.wantNormalTaken]...)
			} else {
				want = append(append(append(want, normal[0]), urgent[:c.wantUrgentTaken]...), normal[1:c.wantNormalTaken]...)
			}
			if fmt.Sprint(batch) != fmt.Sprint(want) {
				t.Fatalf("batch %v,\nwant %v", batch, want)
			}
			if got, wantLeft := names(s.urgentQueue), urgent[c.wantUrgentTaken:]; fmt.Sprint(got) != fmt.Sprint(wantLeft) {
				t.Errorf("urgent left %v, want %v", got, wantLeft)
			}
			if got, wantLeft := names(s.writeQueue), normal[c.wantNormalTaken:]; fmt.Sprint(got) != fmt.Sprint(wantLeft) {
				t.Errorf("normal left %v, want %v", got, wantLeft)
			}
		})
	}
}
