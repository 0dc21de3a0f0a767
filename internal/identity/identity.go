package identity

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/paved/paved/internal/run"
)

// Defaults of Config.
const (
	DefaultLifetime    = 10 * time.Minute
	DefaultMaxLifetime = time.Hour
	DefaultRotateEvery = 7 * 24 * time.Hour
)

// Paths of the public routes, relative to the issuer URL.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/.well-known/jwks"
)

// ErrInvalidRequest is wrapped by Issue's errors for a request that cannot get a token.
var ErrInvalidRequest = errors.New("identity: invalid token request")

// Config configures an Issuer.
type Config struct {
	// Dir holds the key file (keys.json, mode 0600); created if missing. Required.
	Dir string
	// URL returns the issuer URL (the iss claim and the base of the public routes): the
	// server's external URL, without a trailing slash. A func because the server's address
	// may be known only once it listens. Required.
	URL func() string
	// Lifetime of a token whose request gives none. Default: DefaultLifetime.
	Lifetime time.Duration
	// MaxLifetime bounds a requested lifetime; a retired key stays in the JWKS this long
	// (plus a minute of clock skew). Default: DefaultMaxLifetime.
	MaxLifetime time.Duration
	// RotateEvery is how long one key signs before the next one takes over. Default:
	// DefaultRotateEvery.
	RotateEvery time.Duration
	// Now defaults to time.Now; Logger to slog.Default().
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Dir == "" || c.URL == nil {
		return errors.New("identity: Dir and URL are required")
	}
	if c.Lifetime == 0 {
		c.Lifetime = DefaultLifetime
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	if c.RotateEvery == 0 {
		c.RotateEvery = DefaultRotateEvery
	}
	if c.Lifetime < 0 || c.MaxLifetime < c.Lifetime || c.RotateEvery < 0 {
		return fmt.Errorf("identity: lifetime %s must be positive and at most the max lifetime %s; rotate every %s must be positive",
			c.Lifetime, c.MaxLifetime, c.RotateEvery)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// skew is how long past its expiry a retired key is kept, for verifiers whose clock is late.
const skew = time.Minute

// key is one signing key as kept in the key file.
type key struct {
	ID      string    `json:"kid"`
	Created time.Time `json:"created"`
	// Retired is when the next key took over; zero for the key that signs.
	Retired time.Time `json:"retired,omitzero"`
	PEM     string    `json:"private_key_pem"`

	priv *rsa.PrivateKey
}

// Issuer signs workload identity tokens and serves what verifies them. Its methods may be
// called concurrently.
type Issuer struct {
	cfg  Config
	path string

	mu   sync.Mutex
	keys []*key // oldest first; the last one signs
}

// New loads the issuer's keys from Dir, making the first one when there is none.
func New(cfg Config) (*Issuer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: key dir: %w", err)
	}
	i := &Issuer{cfg: cfg, path: filepath.Join(cfg.Dir, "keys.json")}
	b, err := os.ReadFile(i.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("identity: %w", err)
	default:
		if err := json.Unmarshal(b, &i.keys); err != nil {
			return nil, fmt.Errorf("identity: %s is not a key file (%v): move it away and a new key is made", i.path, err)
		}
		for _, k := range i.keys {
			blk, _ := pem.Decode([]byte(k.PEM))
			if blk == nil {
				return nil, fmt.Errorf("identity: %s: key %s has no PEM block: move the file away and a new key is made", i.path, k.ID)
			}
			p, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			rk, ok := p.(*rsa.PrivateKey)
			if err != nil || !ok {
				return nil, fmt.Errorf("identity: %s: key %s is not an RSA private key: move the file away and a new key is made", i.path, k.ID)
			}
			k.priv = rk
		}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if err := i.maintainLocked(); err != nil {
		return nil, err
	}
	return i, nil
}

// Rotate makes a new signing key now; the one before stays in the JWKS until the tokens it
// signed have expired.
func (i *Issuer) Rotate() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.rotateLocked()
}

// maintainLocked makes a key when there is none or the signing one is due, and drops the
// retired keys no unexpired token can name.
func (i *Issuer) maintainLocked() error {
	now := i.cfg.Now()
	if len(i.keys) == 0 || now.Sub(i.keys[len(i.keys)-1].Created) >= i.cfg.RotateEvery {
		return i.rotateLocked()
	}
	keep := i.keys[:0]
	for _, k := range i.keys {
		if k.Retired.IsZero() || now.Sub(k.Retired) < i.cfg.MaxLifetime+skew {
			keep = append(keep, k)
		}
	}
	if len(keep) != len(i.keys) {
		i.keys = keep
		return i.saveLocked()
	}
	return nil
}

func (i *Issuer) rotateLocked() error {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("identity: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	now := i.cfg.Now().UTC()
	keep := []*key{}
	for _, k := range i.keys {
		if k.Retired.IsZero() {
			k.Retired = now
		}
		if now.Sub(k.Retired) < i.cfg.MaxLifetime+skew {
			keep = append(keep, k)
		}
	}
	i.keys = append(keep, &key{ID: uuid.NewString(), Created: now,
		PEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), priv: priv})
	if err := i.saveLocked(); err != nil {
		return err
	}
	i.cfg.Logger.Info("workload identity key rotated", "kid", i.keys[len(i.keys)-1].ID, "keys", len(i.keys))
	return nil
}

// saveLocked replaces the key file atomically: a crash leaves the old or the new one.
func (i *Issuer) saveLocked() error {
	b, err := json.MarshalIndent(i.keys, "", "  ")
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	tmp := i.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("identity: save keys: %w", err)
	}
	if err := os.Rename(tmp, i.path); err != nil {
		return fmt.Errorf("identity: save keys: %w", err)
	}
	return nil
}

// JWKS is the public half of every key a live token may name.
func (i *Issuer) JWKS() jose.JSONWebKeySet {
	i.mu.Lock()
	defer i.mu.Unlock()
	_ = i.maintainLocked() // a failed save keeps serving what is in memory
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range i.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.ID,
			Algorithm: string(jose.RS256), Use: "sig"})
	}
	return set
}

// Discovery is the OpenID Provider metadata document.
func (i *Issuer) Discovery() Metadata {
	iss := i.URL()
	return Metadata{
		Issuer: iss, JWKSURI: iss + JWKSPath,
		ResponseTypes: []string{"id_token"}, SubjectTypes: []string{"public"},
		SigningAlgs: []string{string(jose.RS256)}, Scopes: []string{"openid"},
		Claims: claimNames,
	}
}

// URL is the issuer URL, the iss claim of every token.
func (i *Issuer) URL() string { return strings.TrimSuffix(i.cfg.URL(), "/") }

// Metadata is the discovery document (OpenID Connect Discovery 1.0, section 3).
type Metadata struct {
	Issuer        string   `json:"issuer"`
	JWKSURI       string   `json:"jwks_uri"`
	ResponseTypes []string `json:"response_types_supported"`
	SubjectTypes  []string `json:"subject_types_supported"`
	SigningAlgs   []string `json:"id_token_signing_alg_values_supported"`
	Scopes        []string `json:"scopes_supported"`
	Claims        []string `json:"claims_supported"`
}

var claimNames = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "repository", "repository_owner",
	"ref", "ref_type", "sha", "pipeline", "stage", "run_id", "run_attempt", "environment", "event_name", "actor",
	"head_ref", "base_ref"}

// Claims are a token's claims: the registered ones and paved's, named as GitHub Actions
// names its own where there is one.
type Claims struct {
	jwt.Claims
	Repository      string `json:"repository"`
	RepositoryOwner string `json:"repository_owner,omitempty"`
	Ref             string `json:"ref,omitempty"`
	RefType         string `json:"ref_type,omitempty"` // branch or tag
	SHA             string `json:"sha,omitempty"`
	Pipeline        string `json:"pipeline"`
	Stage           string `json:"stage"`
	RunID           string `json:"run_id"`
	RunAttempt      string `json:"run_attempt,omitempty"`
	Environment     string `json:"environment,omitempty"`
	EventName       string `json:"event_name"`
	Actor           string `json:"actor,omitempty"`
	HeadRef         string `json:"head_ref,omitempty"` // a pull request's source branch
	BaseRef         string `json:"base_ref,omitempty"` // a pull request's target branch
}

// Request is what a token is issued for.
type Request struct {
	Info    *run.Info
	RunID   string
	Stage   string
	Attempt int
	// Environment is the deploy stage's environment; "" for other stages.
	Environment string
	Audience    string
	// Lifetime 0 means Config.Lifetime.
	Lifetime time.Duration
}

// Subject is the sub claim: repo:R:environment:E for a stage deploying to an environment,
// repo:R:pull_request for a pull request's run, repo:R:ref:REF otherwise (GitHub's forms, so
// trust policies match on them the same way).
func Subject(repo, ref, kind, environment string) string {
	switch {
	case environment != "":
		return "repo:" + repo + ":environment:" + environment
	case kind == "pull_request":
		return "repo:" + repo + ":pull_request"
	default:
		return "repo:" + repo + ":ref:" + ref
	}
}

// Issue signs a token for one stage attempt.
func (i *Issuer) Issue(_ context.Context, r Request) (string, error) {
	if r.Info == nil || r.Audience == "" {
		return "", fmt.Errorf("%w: a run and an audience are required", ErrInvalidRequest)
	}
	life := r.Lifetime
	if life == 0 {
		life = i.cfg.Lifetime
	}
	if life < 0 || life > i.cfg.MaxLifetime {
		return "", fmt.Errorf("%w: lifetime %s must be between 0 and %s", ErrInvalidRequest, life, i.cfg.MaxLifetime)
	}
	i.mu.Lock()
	if err := i.maintainLocked(); err != nil {
		i.cfg.Logger.Error("cannot rotate the workload identity key; the current one goes on signing", "err", err)
	}
	k := i.keys[len(i.keys)-1]
	i.mu.Unlock()

	info := r.Info
	now := i.cfg.Now()
	c := Claims{
		Claims: jwt.Claims{
			Issuer: i.URL(), Subject: Subject(info.Repo, qualifiedRef(info), info.Trigger.Kind, r.Environment),
			Audience: jwt.Audience{r.Audience}, Expiry: jwt.NewNumericDate(now.Add(life)),
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ID: uuid.NewString(),
		},
		Repository: info.Repo, Ref: qualifiedRef(info), SHA: info.SHA, RunID: r.RunID, Stage: r.Stage,
		Environment: r.Environment, EventName: info.Trigger.Kind, Actor: info.Trigger.Author,
	}
	if owner, _, ok := strings.Cut(info.Repo, "/"); ok {
		c.RepositoryOwner = owner
	}
	switch {
	case strings.HasPrefix(c.Ref, "refs/heads/"):
		c.RefType = "branch"
	case strings.HasPrefix(c.Ref, "refs/tags/"):
		c.RefType = "tag"
	}
	if info.Pipeline != nil {
		c.Pipeline = info.Pipeline.Name
	}
	if r.Attempt > 0 {
		c.RunAttempt = fmt.Sprint(r.Attempt)
	}
	if info.Trigger.Kind == "pull_request" {
		c.HeadRef, c.BaseRef = info.Trigger.SourceBranch, info.Trigger.Branch
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.ID))
	if err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	tok, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("identity: sign: %w", err)
	}
	return tok, nil
}

// qualifiedRef is the run's ref as git spells it in full (refs/heads/main), whatever the
// trigger gave (a manual run's "main"): trust policies match the full form.
func qualifiedRef(info *run.Info) string {
	ref := info.Ref
	switch {
	case strings.HasPrefix(ref, "refs/"):
		return ref
	case info.Trigger.Tag != "" && (ref == "" || ref == info.Trigger.Tag):
		return "refs/tags/" + info.Trigger.Tag
	case info.Trigger.Branch != "" && info.Trigger.Kind != "pull_request" && (ref == "" || ref == info.Trigger.Branch):
		return "refs/heads/" + info.Trigger.Branch
	}
	return ref
}
