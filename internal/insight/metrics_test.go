package insight

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
)

func TestQueueWaitHistogram(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	m.StageStarted(&run.Info{Priority: "hotfix"}, "build", 3*time.Millisecond)
	m.StageStarted(&run.Info{Priority: "hotfix"}, "test", 2*time.Second)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`paved_stage_queue_wait_seconds_count{priority="hotfix"} 2`,
		`paved_stage_queue_wait_seconds_bucket{priority="hotfix",le="0.004"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %q in:\n%s", want, body)
		}
	}
}
