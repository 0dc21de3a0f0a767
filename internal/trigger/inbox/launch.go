package inbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/trigger"
)

// Scheduler is what launching needs of the scheduler.
type Scheduler interface {
	Create(ctx context.Context, p schedule.CreateParams) (string, error)
}

// Launcher turns "this repo at this ref" into a run: resolve the ref, read and compile the
// pipeline file at that commit, create the run. The API's manual runs and the inbox's
// routed triggers both go through it.
type Launcher struct {
	Git       *trigger.Git
	Scheduler Scheduler
	// PipelineFile is the pipeline's path in a repository. Default: .paved.yml.
	PipelineFile string
	Compile      pipeline.Options

	mu    sync.Mutex
	cache map[string]compiled         // source + sha → the compiled pipeline file
	revs  map[string]trigger.Revision // clone URL + full sha → the resolved commit
}

type compiled struct {
	p   *pipeline.Pipeline
	err error
}

func (l *Launcher) file() string {
	if l.PipelineFile == "" {
		return ".paved.yml"
	}
	return l.PipelineFile
}

// Pipeline resolves ref (branch, tag, sha; empty: the default branch) and compiles the
// pipeline file there. A missing file wraps os.ErrNotExist; an invalid one is a
// pipeline.ErrorList.
func (l *Launcher) Pipeline(ctx context.Context, repo trigger.Repo, ref string) (trigger.Revision, *pipeline.Pipeline, error) {
	// A full commit sha resolved once stays resolved (commits are immutable, and a mirror
	// keeps what it fetched): a burst of triggers for one commit spawns git once.
	full := len(ref) == 40 && strings.Trim(ref, "0123456789abcdef") == ""
	revKey := repo.CloneURL + "\x00" + ref
	l.mu.Lock()
	rev, ok := l.revs[revKey]
	l.mu.Unlock()
	if !full || !ok {
		var err error
		if rev, err = l.Git.Resolve(ctx, repo, ref); err != nil {
			return rev, nil, err
		}
		if full {
			l.mu.Lock()
			if l.revs == nil || len(l.revs) >= 4096 {
				l.revs = map[string]trigger.Revision{}
			}
			l.revs[revKey] = rev
			l.mu.Unlock()
		}
	}
	key := rev.Source + "\x00" + rev.SHA
	l.mu.Lock()
	c, ok := l.cache[key]
	l.mu.Unlock()
	if ok {
		return rev, c.p, c.err
	}
	src, err := l.Git.ReadFile(ctx, rev, l.file())
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return rev, nil, err // a git failure may pass: do not cache it
		}
		c.err = fmt.Errorf("%w (write one with `paved init --write` and push it)", err)
	} else {
		c.p, c.err = pipeline.Compile(l.file(), src, l.Compile)
	}
	// A commit's file never changes: cache it, bounded, so that a burst of triggers for
	// one commit reads and compiles it once.
	l.mu.Lock()
	if l.cache == nil || len(l.cache) >= 256 {
		l.cache = map[string]compiled{}
	}
	l.cache[key] = c
	l.mu.Unlock()
	return rev, c.p, c.err
}

// Manual starts a run of repo at ref by hand (POST /api/v1/runs).
func (l *Launcher) Manual(ctx context.Context, repo trigger.Repo, ref string) (id, sha string, err error) {
	rev, p, err := l.Pipeline(ctx, repo, ref)
	if err != nil {
		return "", "", err
	}
	if ref == "" {
		ref = rev.Branch
	}
	id, err = l.create(ctx, "", repo, ref, rev, p, run.Trigger{Kind: trigger.KindManual, Branch: rev.Branch, Tag: rev.Tag, Provider: "api"})
	return id, rev.SHA, err
}

func (l *Launcher) create(ctx context.Context, id string, repo trigger.Repo, ref string, rev trigger.Revision, p *pipeline.Pipeline, tr run.Trigger) (string, error) {
	return l.Scheduler.Create(ctx, schedule.CreateParams{ID: id, Info: run.Info{
		Repo: repo.FullName, Team: repo.Team, Ref: ref, SHA: rev.SHA, File: l.file(),
		Trigger:  tr,
		Source:   run.Source{Repo: rev.Source, SHA: rev.SHA},
		Pipeline: p,
	}})
}

// runTrigger is what a run records of its trigger (run.Info.Trigger).
func runTrigger(t *trigger.Trigger, paths []string) run.Trigger {
	rt := run.Trigger{
		Kind: t.Kind, Branch: t.Branch, Tag: t.Tag, Author: t.Author.Login, Paths: paths,
		ID: t.ID, Provider: t.Provider, Action: t.Action, Before: t.Before, Message: t.Message,
		AuthorName: t.Author.Name, AuthorEmail: t.Author.Email,
	}
	if rt.Author == "" {
		rt.Author = t.Author.Name
	}
	if t.PR != nil {
		rt.PRNumber, rt.PRTitle, rt.SourceBranch, rt.Labels = t.PR.Number, t.PR.Title, t.PR.SourceBranch, t.PR.Labels
	}
	return rt
}
