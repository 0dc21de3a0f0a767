package deploy_test

import (
	"time"

	"github.com/paved/paved/internal/deploy/local"
)

func localProbe(path string) local.Probe {
	return local.Probe{Path: path, Period: 50 * time.Millisecond, Timeout: time.Second, FailureThreshold: 2}
}
