package insight

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// DefaultCPUHourPrice is the price of one CPU-hour when the server is not told one
// (--cpu-hour-price), in whatever currency the operator thinks in.
const DefaultCPUHourPrice = 0.05

// Cost is what the runs of a window used, by run, pipeline and team, priced per CPU-hour.
// Every attempt of a stage counts (a retry costs again), as its StageFinished recorded it;
// a stage the executor did not measure (a built-in kind, a cancelled one) counts zero.
type Cost struct {
	CPUHourPrice float64   `json:"cpu_hour_price"`
	Total        CostSum   `json:"total"`
	Teams        []CostSum `json:"teams"`
	Pipelines    []CostSum `json:"pipelines"`
	Runs         []RunCost `json:"runs"`
	Truncated    bool      `json:"truncated"`
}

// CostSum is the usage of a set of runs.
type CostSum struct {
	Team     string `json:"team,omitempty"`
	Repo     string `json:"repo,omitempty"`
	Pipeline string `json:"pipeline,omitempty"`
	Runs     int    `json:"runs"`
	// CPUSeconds is CPU time, user and system; MaxRSS the largest resident set one process
	// of one stage had, in bytes.
	CPUSeconds float64 `json:"cpu_seconds"`
	MaxRSS     int64   `json:"max_rss_bytes"`
	// MemoryGBSeconds is each attempt's peak resident set (GiB) times its wall time, summed:
	// an upper bound of what the stages held, as the peak is all the executor reports.
	MemoryGBSeconds float64 `json:"memory_gb_seconds"`
	Cost            float64 `json:"cost"`
}

// RunCost is one run's usage, with its stages'.
type RunCost struct {
	ID              string      `json:"id"`
	Repo            string      `json:"repo"`
	Pipeline        string      `json:"pipeline"`
	Team            string      `json:"team,omitempty"`
	Created         time.Time   `json:"created_at"`
	CPUSeconds      float64     `json:"cpu_seconds"`
	MaxRSS          int64       `json:"max_rss_bytes"`
	MemoryGBSeconds float64     `json:"memory_gb_seconds"`
	Cost            float64     `json:"cost"`
	Stages          []StageCost `json:"stages"`
}

// StageCost is one stage's usage over its attempts.
type StageCost struct {
	Stage           string  `json:"stage"`
	Attempts        int     `json:"attempts"`
	CPUSeconds      float64 `json:"cpu_seconds"`
	MaxRSS          int64   `json:"max_rss_bytes"`
	MemoryGBSeconds float64 `json:"memory_gb_seconds"`
}

// price is the cost of cpuMS at price per CPU-hour, rounded to 1e-6 so sums read cleanly.
func price(cpuMS int64, perHour float64) float64 {
	return math.Round(float64(cpuMS)/3_600_000*perHour*1e6) / 1e6
}

// LoadCost sums the usage of the runs of f's window (repo, team and pipeline filter) from
// their StageFinished events.
func LoadCost(ctx context.Context, st RunStore, f Filter, perHour float64) (Cost, error) {
	sums, err := st.RunList(ctx, store.RunListParams{Repo: f.Repo, Team: f.Team, Limit: MaxRuns + 1})
	if err != nil {
		return Cost{}, err
	}
	c := Cost{CPUHourPrice: perHour, Runs: []RunCost{}}
	type pipeKey struct{ repo, pipeline string }
	teams, pipes := map[string]*CostSum{}, map[pipeKey]*CostSum{}
	var totalMS int64
	teamMS, pipeMS := map[string]int64{}, map[pipeKey]int64{}
	for _, sum := range sums {
		if sum.CreatedAt.Before(f.Since) || (!f.Until.IsZero() && !sum.CreatedAt.Before(f.Until)) ||
			(f.Pipeline != "" && sum.Pipeline != f.Pipeline) {
			continue
		}
		if len(c.Runs) == MaxRuns {
			c.Truncated = true
			break
		}
		evs, err := st.EventList(ctx, store.EventListParams{RunID: sum.ID})
		if err != nil {
			return Cost{}, err
		}
		rc, cpuMS := runCost(sum, evs, perHour)
		c.Runs = append(c.Runs, rc)
		totalMS += cpuMS
		c.Total.Runs++
		c.Total.MaxRSS = max(c.Total.MaxRSS, rc.MaxRSS)
		c.Total.MemoryGBSeconds += rc.MemoryGBSeconds
		t := teams[sum.Team]
		if t == nil {
			t = &CostSum{Team: sum.Team}
			teams[sum.Team] = t
		}
		t.Runs++
		t.MaxRSS = max(t.MaxRSS, rc.MaxRSS)
		t.MemoryGBSeconds += rc.MemoryGBSeconds
		teamMS[sum.Team] += cpuMS
		pk := pipeKey{sum.Repo, sum.Pipeline}
		p := pipes[pk]
		if p == nil {
			p = &CostSum{Repo: sum.Repo, Pipeline: sum.Pipeline, Team: sum.Team}
			pipes[pk] = p
		}
		p.Runs++
		p.MaxRSS = max(p.MaxRSS, rc.MaxRSS)
		p.MemoryGBSeconds += rc.MemoryGBSeconds
		pipeMS[pk] += cpuMS
	}
	c.Total.CPUSeconds, c.Total.Cost = float64(totalMS)/1000, price(totalMS, perHour)
	for team, t := range teams {
		t.CPUSeconds, t.Cost = float64(teamMS[team])/1000, price(teamMS[team], perHour)
		c.Teams = append(c.Teams, *t)
	}
	for k, p := range pipes {
		p.CPUSeconds, p.Cost = float64(pipeMS[k])/1000, price(pipeMS[k], perHour)
		c.Pipelines = append(c.Pipelines, *p)
	}
	byCost := func(a, b CostSum) int {
		return cmp.Or(cmp.Compare(b.CPUSeconds, a.CPUSeconds), cmp.Compare(a.Team, b.Team), cmp.Compare(a.Repo, b.Repo), cmp.Compare(a.Pipeline, b.Pipeline))
	}
	slices.SortFunc(c.Teams, byCost)
	slices.SortFunc(c.Pipelines, byCost)
	if c.Teams == nil {
		c.Teams = []CostSum{}
	}
	if c.Pipelines == nil {
		c.Pipelines = []CostSum{}
	}
	return c, nil
}

// runCost sums one run's StageFinished usage, stages sorted by name.
func runCost(sum run.Summary, evs []run.Event, perHour float64) (RunCost, int64) {
	rc := RunCost{ID: sum.ID, Repo: sum.Repo, Pipeline: sum.Pipeline, Team: sum.Team, Created: sum.CreatedAt, Stages: []StageCost{}}
	idx := map[string]int{}
	stageMS := map[string]int64{}
	var total int64
	started := map[string]time.Time{}
	for _, e := range evs {
		if e.Type == run.StageStarted {
			started[e.Stage] = e.Time
		}
		if e.Type != run.StageFinished || e.Attempt == 0 {
			continue // a stage skipped before it ran has no attempt and used nothing
		}
		i, ok := idx[e.Stage]
		if !ok {
			i = len(rc.Stages)
			idx[e.Stage] = i
			rc.Stages = append(rc.Stages, StageCost{Stage: e.Stage})
		}
		s := &rc.Stages[i]
		s.Attempts++
		stageMS[e.Stage] += e.CPUMS
		s.CPUSeconds = float64(stageMS[e.Stage]) / 1000
		s.MaxRSS = max(s.MaxRSS, e.MaxRSS)
		rc.MaxRSS = max(rc.MaxRSS, e.MaxRSS)
		if t, ok := started[e.Stage]; ok && e.MaxRSS > 0 {
			gbs := float64(e.MaxRSS) / (1 << 30) * e.Time.Sub(t).Seconds()
			s.MemoryGBSeconds += gbs
			rc.MemoryGBSeconds += gbs
		}
		total += e.CPUMS
	}
	slices.SortFunc(rc.Stages, func(a, b StageCost) int { return cmp.Compare(a.Stage, b.Stage) })
	rc.CPUSeconds, rc.Cost = float64(total)/1000, price(total, perHour)
	return rc, total
}
