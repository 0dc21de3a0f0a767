package run

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestFoldArtifacts: ArtifactsStored gives a stage its list; a new attempt starts without
// one, so a retry's list replaces the earlier attempt's; a replay folds to the same lists.
func TestFoldArtifacts(t *testing.T) {
	t.Parallel()
	p := dag("a", "b:a")
	p.Stages[0].Retries = 1
	x := newSim(t, p, Trigger{Kind: "push"})
	first := []Artifact{{Path: "out/app", Type: ArtifactFile, Digest: "sha256:" + strings.Repeat("1", 64), Size: 3, Mode: "0755"}}
	second := []Artifact{
		{Path: "out/app", Type: ArtifactFile, Digest: "sha256:" + strings.Repeat("2", 64), Size: 4, Mode: "0755"},
		{Path: "out/current", Type: ArtifactSymlink, Link: "app"},
	}
	// The fold does not judge: a list recorded for an attempt that then failed is dropped
	// by the retry all the same.
	x.apply(Event{Type: StageStarted, Stage: "a", Attempt: 1}, Event{Type: ArtifactsStored, Stage: "a", Attempt: 1, Artifacts: first},
		Event{Type: StageFinished, Stage: "a", Status: StatusFailed})
	if got := x.s.Stage("a").Artifacts; !reflect.DeepEqual(got, first) {
		t.Fatalf("after attempt 1: %+v", got)
	}
	x.next()
	if st := x.s.Stage("a"); st.Attempt != 2 || st.Artifacts != nil {
		t.Fatalf("retry queued: attempt %d, artifacts %+v", st.Attempt, st.Artifacts)
	}
	x.apply(Event{Type: StageStarted, Stage: "a", Attempt: 2}, Event{Type: ArtifactsStored, Stage: "a", Attempt: 2, Artifacts: second},
		Event{Type: StageFinished, Stage: "a", Status: StatusSucceeded})
	x.next()
	if got := x.s.Stage("a").Artifacts; !reflect.DeepEqual(got, second) {
		t.Fatalf("after attempt 2: %+v", got)
	}
	if x.s.Stage("b").Status != StatusQueued {
		t.Fatalf("b: %s", x.statuses())
	}

	// Through JSON, as the store keeps events.
	b, err := json.Marshal(x.log)
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	if err := json.Unmarshal(b, &events); err != nil {
		t.Fatal(err)
	}
	again, err := Fold(events)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Stage("a").Artifacts; !reflect.DeepEqual(got, second) {
		t.Fatalf("replayed: %+v", got)
	}

	bad := &State{}
	if err := bad.Apply(Event{RunID: "r", Seq: 1, Type: RunCreated, Info: &Info{Pipeline: p}}); err != nil {
		t.Fatal(err)
	}
	if err := bad.Apply(Event{RunID: "r", Seq: 2, Type: ArtifactsStored, Artifacts: first}); err == nil {
		t.Fatal("ArtifactsStored without a stage was accepted")
	}
}
