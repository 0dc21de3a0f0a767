package forge

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestRetryAfterAndTemporary(t *testing.T) {
	t.Parallel()
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	reset := strconv.FormatInt(time.Now().Add(90*time.Second).Unix(), 10)
	for _, c := range []struct {
		h        http.Header
		min, max time.Duration
	}{
		{h("Retry-After", "7"), 7 * time.Second, 7 * time.Second},
		{h("Retry-After", time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)), 50 * time.Second, time.Minute},
		{h("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", reset), 80 * time.Second, 90 * time.Second},
		{h("RateLimit-Remaining", "0", "RateLimit-Reset", reset), 80 * time.Second, 90 * time.Second},
		{h("X-RateLimit-Remaining", "12", "X-RateLimit-Reset", reset), 0, 0},
		{h("Retry-After", "soon"), 0, 0},
	} {
		if got := retryAfter(c.h); got < c.min || got > c.max {
			t.Errorf("%v: %v, want %v..%v", c.h, got, c.min, c.max)
		}
	}
	for err, want := range map[error]bool{
		&HTTPError{Status: 500}:                          true,
		&HTTPError{Status: 429}:                          true,
		&HTTPError{Status: 403, RetryAfter: time.Minute}: true,
		&HTTPError{Status: 403}:                          false,
		&HTTPError{Status: 404}:                          false,
		&HTTPError{Status: 422}:                          false,
		errors.New("connection refused"):                 true,
		nil:                                              false,
	} {
		if got := Temporary(err); got != want {
			t.Errorf("Temporary(%v) = %v, want %v", err, got, want)
		}
	}
}

func TestBitbucketKeyFitsForty(t *testing.T) {
	t.Parallel()
	if k := bitbucketKey("paved/app/test"); k != "paved/app/test" {
		t.Error(k)
	}
	long := "paved/a-very-long-pipeline-name/a-very-long-stage-name[1.22,linux]"
	if k := bitbucketKey(long); len(k) > 40 || k != bitbucketKey(long) {
		t.Errorf("%q (%d)", k, len(k))
	}
}
