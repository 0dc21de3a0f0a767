package sign

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Predicate types paved writes.
const (
	PredicateSLSAProvenance = "https://slsa.dev/provenance/v1"
	PredicateCycloneDX      = "https://cyclonedx.org/bom" // what cosign attest --type cyclonedx writes
)

// BuildType is the SLSA buildType of a paved stage: the schema of the external and internal
// parameters below, documented in docs/supply-chain.md.
const BuildType = "https://github.com/paved/paved/blob/main/docs/supply-chain.md#build-type-v1"

// DefaultBuilderID names the builder when Build.BuilderID is empty.
const DefaultBuilderID = "https://github.com/paved/paved/server"

// ErrStatement is wrapped by errors about an in-toto statement that paved cannot read.
var ErrStatement = errors.New("sign: not an in-toto statement")

// Artifact names one artifact: its path in the stage's workspace and its digest.
type Artifact struct {
	Name   string `json:"name"`
	Digest string `json:"digest"` // sha256:<hex>
}

// Build is what provenance records of the stage that made an artifact. The control plane
// fills it from the run (run.Info, the stage's events), never from the stage's own output.
type Build struct {
	// BuilderID is the SLSA builder id, a URI naming this paved installation. Default
	// DefaultBuilderID.
	BuilderID string
	RunID     string
	Stage     string
	Attempt   int
	// PipelineFile is the pipeline file's path in the repository; PipelineDigest the
	// sha256:<hex> of its bytes.
	PipelineFile   string
	PipelineDigest string
	// Repo is the repository's full name (acme/payments); CloneURL where it was fetched
	// from, when known.
	Repo     string
	CloneURL string
	Ref      string // refs/heads/main, refs/tags/v1.2.0
	SHA      string // the source commit
	Trigger  Trigger
	// Steps are the stage's step commands in order.
	Steps []string
	// Inputs are the artifacts the stage received from the stages it needs.
	Inputs     []Artifact
	StartedOn  time.Time
	FinishedOn time.Time
}

// Trigger is what started the run, as provenance records it.
type Trigger struct {
	Kind     string `json:"kind"`               // push, tag, pull_request, manual, cron
	Provider string `json:"provider,omitempty"` // github, gitlab, bitbucket, generic, api, cron
	ID       string `json:"id,omitempty"`       // the trigger's id in paved
	Author   string `json:"author,omitempty"`
}

// externalParameters and internalParameters are the buildType's parameter schemas.
type externalParameters struct {
	Pipeline struct {
		Path   string            `json:"path"`
		Digest map[string]string `json:"digest,omitempty"`
	} `json:"pipeline"`
	Source struct {
		Repository string `json:"repository"`
		URI        string `json:"uri,omitempty"`
		Ref        string `json:"ref"`
		SHA        string `json:"sha"`
	} `json:"source"`
	Trigger Trigger `json:"trigger"`
}

type internalParameters struct {
	Stage   string   `json:"stage"`
	Attempt int      `json:"attempt,omitempty"`
	Steps   []string `json:"steps"`
}

var gitSHA1 = regexp.MustCompile(`^[0-9a-f]{40}$`)

// ProvenanceStatement is the in-toto v1 statement, with a SLSA v1 provenance predicate, that
// artifact a was built by b.
func ProvenanceStatement(a Artifact, b Build) (*intoto.Statement, error) {
	subject, err := descriptor(a)
	if err != nil {
		return nil, err
	}
	if b.BuilderID == "" {
		b.BuilderID = DefaultBuilderID
	}
	var ext externalParameters
	ext.Pipeline.Path = b.PipelineFile
	if b.PipelineDigest != "" {
		sum, err := parseDigest(b.PipelineDigest)
		if err != nil {
			return nil, fmt.Errorf("sign: pipeline file digest: %w", err)
		}
		ext.Pipeline.Digest = map[string]string{"sha256": fmt.Sprintf("%x", sum)}
	}
	ext.Source.Repository, ext.Source.URI, ext.Source.Ref, ext.Source.SHA = b.Repo, b.CloneURL, b.Ref, b.SHA
	ext.Trigger = b.Trigger
	steps := b.Steps
	if steps == nil {
		steps = []string{}
	}
	extS, err := toStruct(ext)
	if err != nil {
		return nil, err
	}
	intS, err := toStruct(internalParameters{Stage: b.Stage, Attempt: b.Attempt, Steps: steps})
	if err != nil {
		return nil, err
	}
	// The source commit first, then the input artifacts: everything the stage consumed.
	var deps []*intoto.ResourceDescriptor
	if b.SHA != "" {
		src := b.CloneURL
		if src == "" {
			src = b.Repo
		}
		d := &intoto.ResourceDescriptor{Uri: "git+" + src + "@" + b.Ref}
		if gitSHA1.MatchString(b.SHA) {
			d.Digest = map[string]string{"gitCommit": b.SHA}
		} else {
			d.Annotations, _ = structpb.NewStruct(map[string]any{"commit": b.SHA}) // SHA-256 git
		}
		deps = append(deps, d)
	}
	for _, in := range b.Inputs {
		d, err := descriptor(in)
		if err != nil {
			return nil, fmt.Errorf("sign: input artifact: %w", err)
		}
		deps = append(deps, d)
	}
	meta := &slsa.BuildMetadata{InvocationId: b.RunID + "/" + b.Stage + "/" + strconv.Itoa(b.Attempt)}
	if !b.StartedOn.IsZero() {
		meta.StartedOn = timestamppb.New(b.StartedOn)
	}
	if !b.FinishedOn.IsZero() {
		meta.FinishedOn = timestamppb.New(b.FinishedOn)
	}
	pred := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{
			BuildType: BuildType, ExternalParameters: extS, InternalParameters: intS, ResolvedDependencies: deps,
		},
		RunDetails: &slsa.RunDetails{Builder: &slsa.Builder{Id: b.BuilderID}, Metadata: meta},
	}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf("sign: provenance: %w", err)
	}
	predS, err := protoToStruct(pred)
	if err != nil {
		return nil, err
	}
	st := &intoto.Statement{
		Type: intoto.StatementTypeUri, Subject: []*intoto.ResourceDescriptor{subject},
		PredicateType: PredicateSLSAProvenance, Predicate: predS,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("sign: statement: %w", err)
	}
	return st, nil
}

// SBOMStatement is the in-toto v1 statement that bom, a CycloneDX JSON document, describes
// artifact a.
func SBOMStatement(a Artifact, bom []byte) (*intoto.Statement, error) {
	subject, err := descriptor(a)
	if err != nil {
		return nil, err
	}
	var pred structpb.Struct
	if err := protojson.Unmarshal(bom, &pred); err != nil {
		return nil, fmt.Errorf("sign: the SBOM is not a JSON object: %s", protoError(err))
	}
	if f := pred.Fields["bomFormat"]; f.GetStringValue() != "CycloneDX" {
		return nil, errors.New(`sign: the SBOM is not CycloneDX JSON (no "bomFormat": "CycloneDX")`)
	}
	st := &intoto.Statement{
		Type: intoto.StatementTypeUri, Subject: []*intoto.ResourceDescriptor{subject},
		PredicateType: PredicateCycloneDX, Predicate: &pred,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("sign: statement: %w", err)
	}
	return st, nil
}

// MarshalStatement is the statement's JSON, compact and stable: protojson sorts map keys but
// varies its whitespace on purpose, which compacting removes.
func MarshalStatement(st *intoto.Statement) ([]byte, error) {
	b, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return out.Bytes(), nil
}

// Provenance is what a provenance statement says, as verification and people need it.
type Provenance struct {
	Subjects       []Artifact `json:"subjects"`
	BuilderID      string     `json:"builder_id"`
	BuildType      string     `json:"build_type"`
	Repo           string     `json:"repo"`
	Ref            string     `json:"ref"`
	SHA            string     `json:"sha"`
	PipelineFile   string     `json:"pipeline_file"`
	PipelineDigest string     `json:"pipeline_digest,omitempty"`
	Trigger        Trigger    `json:"trigger"`
	InvocationID   string     `json:"invocation_id"` // run id/stage/attempt
	Stage          string     `json:"stage"`
	Steps          []string   `json:"steps"`
	Inputs         []Artifact `json:"inputs,omitempty"` // resolved dependencies with a sha256 digest
	StartedOn      *time.Time `json:"started_on,omitempty"`
	FinishedOn     *time.Time `json:"finished_on,omitempty"`
}

// ParseStatement reads an in-toto statement (v1, or v0.1 as older tools write) and checks
// it against the in-toto rules.
func ParseStatement(payload []byte) (*intoto.Statement, error) {
	var st intoto.Statement
	// Unknown fields are allowed: the in-toto spec lets statements grow.
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrStatement, protoError(err))
	}
	if err := st.Validate(); err != nil {
		if errors.Is(err, intoto.ErrInvalidStatementType) {
			return nil, fmt.Errorf("%w: _type is %q, want %s", ErrStatement, st.GetType(), intoto.StatementTypeUri)
		}
		return nil, fmt.Errorf("%w: %v", ErrStatement, err)
	}
	return &st, nil
}

// ParseProvenance reads a statement with a SLSA v1 provenance predicate of paved's build type.
func ParseProvenance(payload []byte) (*Provenance, error) {
	st, err := ParseStatement(payload)
	if err != nil {
		return nil, err
	}
	if st.GetPredicateType() != PredicateSLSAProvenance {
		return nil, fmt.Errorf("%w: predicate type is %q, want %s", ErrStatement, st.GetPredicateType(), PredicateSLSAProvenance)
	}
	pj, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStatement, err)
	}
	var pred slsa.Provenance
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(pj, &pred); err != nil {
		return nil, fmt.Errorf("%w: SLSA provenance: %s", ErrStatement, protoError(err))
	}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf("%w: SLSA provenance: %v", ErrStatement, err)
	}
	bd, rd := pred.GetBuildDefinition(), pred.GetRunDetails()
	if bd.GetBuildType() != BuildType {
		return nil, fmt.Errorf("%w: build type is %q, want paved's %s", ErrStatement, bd.GetBuildType(), BuildType)
	}
	var ext externalParameters
	if err := fromStruct(bd.GetExternalParameters(), &ext); err != nil {
		return nil, fmt.Errorf("%w: externalParameters: %v", ErrStatement, err)
	}
	var in internalParameters
	if err := fromStruct(bd.GetInternalParameters(), &in); err != nil {
		return nil, fmt.Errorf("%w: internalParameters: %v", ErrStatement, err)
	}
	p := &Provenance{
		BuilderID: rd.GetBuilder().GetId(), BuildType: bd.GetBuildType(),
		Repo: ext.Source.Repository, Ref: ext.Source.Ref, SHA: ext.Source.SHA,
		PipelineFile: ext.Pipeline.Path, Trigger: ext.Trigger,
		InvocationID: rd.GetMetadata().GetInvocationId(), Stage: in.Stage, Steps: in.Steps,
	}
	if h := ext.Pipeline.Digest["sha256"]; h != "" {
		p.PipelineDigest = "sha256:" + h
	}
	p.Subjects = sha256Descriptors(st.GetSubject())
	p.Inputs = sha256Descriptors(bd.GetResolvedDependencies())
	if t := rd.GetMetadata().GetStartedOn(); t != nil {
		v := t.AsTime()
		p.StartedOn = &v
	}
	if t := rd.GetMetadata().GetFinishedOn(); t != nil {
		v := t.AsTime()
		p.FinishedOn = &v
	}
	return p, nil
}

// Names says whether the statement's subjects include digest.
func (p *Provenance) Names(digest string) bool {
	for _, s := range p.Subjects {
		if s.Digest == digest {
			return true
		}
	}
	return false
}

// protoError is a protobuf error's message made stable: the protobuf module puts a
// no-break space in its messages at random per build (so that nobody matches them) and a
// "proto: " prefix of its own.
func protoError(err error) string {
	return strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\u00a0", " "), "proto: ")
}

// sha256Descriptors are the descriptors with a sha256 digest, as Artifacts. in-toto takes hex
// in either case; paved's digests are lowercase.
func sha256Descriptors(ds []*intoto.ResourceDescriptor) []Artifact {
	var out []Artifact
	for _, d := range ds {
		if h := d.GetDigest()["sha256"]; h != "" {
			out = append(out, Artifact{Name: d.GetName(), Digest: "sha256:" + strings.ToLower(h)})
		}
	}
	return out
}

func descriptor(a Artifact) (*intoto.ResourceDescriptor, error) {
	sum, err := parseDigest(a.Digest)
	if err != nil {
		return nil, err
	}
	return &intoto.ResourceDescriptor{Name: a.Name, Digest: map[string]string{"sha256": fmt.Sprintf("%x", sum)}}, nil
}

// toStruct turns a Go value into a protobuf Struct by way of its JSON.
func toStruct(v any) (*structpb.Struct, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	var s structpb.Struct
	if err := protojson.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return &s, nil
}

func protoToStruct(m proto.Message) (*structpb.Struct, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	var s structpb.Struct
	if err := protojson.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return &s, nil
}

// fromStruct reads a protobuf Struct into a Go value by way of its JSON; a nil Struct
// leaves v as it is.
func fromStruct(s *structpb.Struct, v any) error {
	if s == nil {
		return nil
	}
	b, err := protojson.Marshal(s)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errors.New(typeError(te))
		}
		return err
	}
	return nil
}
