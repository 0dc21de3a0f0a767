package sign

import (
	"strings"
	"time"

	"github.com/paved/paved/internal/run"
)

// StageBuild is the Build of one attempt of a stage, from what the run recorded: info from
// RunCreated, the attempt and times from StageStarted and StageFinished, inputs from the
// ArtifactsStored events of the stages it needs. The pipeline file's digest is not in
// run.Info; pass the sha256:<hex> of the file at info.SHA, or "" to leave it out.
func StageBuild(info *run.Info, runID, stage string, attempt int, started, finished time.Time, inputs []run.Artifact, pipelineDigest string) Build {
	b := Build{
		RunID: runID, Stage: stage, Attempt: attempt,
		PipelineFile: info.File, PipelineDigest: pipelineDigest,
		Repo: info.Repo, Ref: fullRef(info), SHA: info.SHA,
		Trigger: Trigger{
			Kind: info.Trigger.Kind, Provider: info.Trigger.Provider, ID: info.Trigger.ID, Author: info.Trigger.Author,
		},
		StartedOn: started, FinishedOn: finished,
	}
	if info.Pipeline != nil {
		for _, s := range info.Pipeline.Stages {
			if s.Name == stage {
				for _, step := range s.Steps {
					b.Steps = append(b.Steps, step.Run)
				}
			}
		}
	}
	for _, a := range inputs {
		if a.Type == run.ArtifactFile && a.Digest != "" {
			b.Inputs = append(b.Inputs, Artifact{Name: a.Path, Digest: a.Digest})
		}
	}
	return b
}

// fullRef is the run's ref as refs/...: manual runs record a bare branch or tag name, and
// a policy must not mistake a tag for a branch of the same name.
func fullRef(info *run.Info) string {
	ref := info.Ref
	switch {
	case strings.HasPrefix(ref, "refs/"):
		return ref
	case info.Trigger.Tag != "":
		return "refs/tags/" + info.Trigger.Tag
	case info.Trigger.Branch != "":
		return "refs/heads/" + info.Trigger.Branch
	case ref != "":
		return "refs/heads/" + ref
	}
	return ""
}
