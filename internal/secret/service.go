package secret

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/store"
)

// MaxValue bounds a secret's value: a secret is a token or a key, not a file.
const MaxValue = 64 << 10

var (
	// ErrInvalid: a secret's name, team, environment or value is not acceptable; the
	// message says why.
	ErrInvalid = errors.New("secret: invalid")
	// ErrNotFound: no such secret in the team (for the environment or team-wide).
	ErrNotFound = errors.New("secret: not found")
)

var (
	namePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	scopePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// Store is what the service keeps secrets in.
type Store interface {
	SecretPut(ctx context.Context, s store.Secret) error
	SecretGet(ctx context.Context, team, environment, name string) (store.Secret, error)
	SecretList(ctx context.Context, p store.SecretListParams) ([]store.Secret, error)
	SecretRekey(ctx context.Context, p store.SecretRekeyParams) (bool, error)
	SecretDelete(ctx context.Context, team, environment, name string) error
}

// Recorder records audit entries (*audit.Log).
type Recorder interface {
	Record(ctx context.Context, e audit.Entry) error
}

// Config configures a Service.
type Config struct {
	Store Store
	Keys  *Keyring
	// Audit records every create, update, read, delete and rotation. Default: none.
	Audit Recorder
	Now   func() time.Time // default time.Now
}

// Service seals, keeps, resolves and rotates secrets. Safe for concurrent use.
type Service struct {
	cfg Config
}

// New checks the config and makes a service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Keys == nil {
		return nil, errors.New("secret: Store and Keys are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}, nil
}

// additionalData binds a ciphertext to its scope.
func additionalData(team, environment, name string) []byte {
	return []byte("paved-secret-v1\x00" + team + "\x00" + environment + "\x00" + name)
}

func validate(team, environment, name string) error {
	if !scopePattern.MatchString(team) {
		return fmt.Errorf("%w: team %q: want letters, digits, '.', '_' or '-' (at most 64)", ErrInvalid, team)
	}
	if environment != "" && !scopePattern.MatchString(environment) {
		return fmt.Errorf("%w: environment %q: want letters, digits, '.', '_' or '-' (at most 64), or \"\" for every environment", ErrInvalid, environment)
	}
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w: name %q: want an environment variable's name, ^[A-Za-z_][A-Za-z0-9_]*$ (at most 128)", ErrInvalid, name)
	}
	return nil
}

// PutParams sets a secret.
type PutParams struct {
	Team, Environment, Name string
	Value                   string
	Actor                   string
}

// Put seals and stores a secret, creating or replacing it; it reports whether it was new.
func (s *Service) Put(ctx context.Context, p PutParams) (store.Secret, bool, error) {
	if err := validate(p.Team, p.Environment, p.Name); err != nil {
		return store.Secret{}, false, err
	}
	switch {
	case p.Value == "":
		return store.Secret{}, false, fmt.Errorf("%w: the value is empty (DELETE the secret instead)", ErrInvalid)
	case len(p.Value) > MaxValue:
		return store.Secret{}, false, fmt.Errorf("%w: the value is %d bytes, over %d", ErrInvalid, len(p.Value), MaxValue)
	}
	_, err := s.cfg.Store.SecretGet(ctx, p.Team, p.Environment, p.Name)
	created := errors.Is(err, store.ErrNotFound)
	if err != nil && !created {
		return store.Secret{}, false, err
	}
	keyID, sealed, err := s.cfg.Keys.Seal([]byte(p.Value), additionalData(p.Team, p.Environment, p.Name))
	if err != nil {
		return store.Secret{}, false, err
	}
	now := s.cfg.Now().UTC()
	sec := store.Secret{Team: p.Team, Environment: p.Environment, Name: p.Name, KeyID: keyID, Ciphertext: sealed,
		UpdatedAt: now, UpdatedBy: p.Actor}
	if created {
		sec.CreatedAt, sec.CreatedBy = now, p.Actor
	}
	action := audit.ActionSecretUpdate
	if created {
		action = audit.ActionSecretCreate
	}
	// Audited first: a secret that cannot be audited is not set.
	if err := s.record(ctx, p.Actor, action, p.Team, p.Name, map[string]any{"environment": p.Environment}); err != nil {
		return store.Secret{}, false, err
	}
	if err := s.cfg.Store.SecretPut(ctx, sec); err != nil {
		return store.Secret{}, false, err
	}
	got, err := s.cfg.Store.SecretGet(ctx, p.Team, p.Environment, p.Name)
	if err != nil {
		return store.Secret{}, false, err
	}
	return got, created, nil
}

// List lists a team's secrets: names, scopes and times. The ciphertexts are cleared.
func (s *Service) List(ctx context.Context, team string) ([]store.Secret, error) {
	if !scopePattern.MatchString(team) {
		return nil, fmt.Errorf("%w: team %q", ErrInvalid, team)
	}
	list, err := s.cfg.Store.SecretList(ctx, store.SecretListParams{Team: team})
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i].Ciphertext, list[i].KeyID = nil, ""
	}
	return list, nil
}

// Delete removes a secret.
func (s *Service) Delete(ctx context.Context, team, environment, name, actor string) error {
	if err := validate(team, environment, name); err != nil {
		return err
	}
	if err := s.cfg.Store.SecretDelete(ctx, team, environment, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %s of team %s (environment %q)", ErrNotFound, name, team, environment)
		}
		return err
	}
	return s.record(ctx, actor, audit.ActionSecretDelete, team, name, map[string]any{"environment": environment})
}

// ResolveParams names a secret a stage reads, and who reads it (for the audit).
type ResolveParams struct {
	Team string
	// Environment is the deploy environment of the stage, "" for a stage that does not
	// deploy. A secret of that environment wins over the team-wide one of the same name.
	Environment string
	Name        string
	Actor       string // who the read is on behalf of, e.g. "run:ID"
	RunID       string
	Stage       string
}

// Resolve opens a secret's value for a run, preferring the environment's secret to the
// team's, and audits the read. An error wraps ErrNotFound when neither exists.
func (s *Service) Resolve(ctx context.Context, p ResolveParams) (string, error) {
	if p.Team == "" {
		return "", fmt.Errorf("%w: %s: the run has no team", ErrNotFound, p.Name)
	}
	scopes := []string{""}
	if p.Environment != "" {
		scopes = []string{p.Environment, ""}
	}
	for _, env := range scopes {
		sec, err := s.cfg.Store.SecretGet(ctx, p.Team, env, p.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		v, err := s.cfg.Keys.Open(sec.KeyID, sec.Ciphertext, additionalData(sec.Team, sec.Environment, sec.Name))
		if err != nil {
			return "", fmt.Errorf("secret %s of team %s: %w", p.Name, p.Team, err)
		}
		details := map[string]any{"environment": env, "run": p.RunID, "stage": p.Stage}
		if err := s.record(ctx, p.Actor, audit.ActionSecretRead, p.Team, p.Name, details); err != nil {
			return "", err
		}
		return string(v), nil
	}
	return "", fmt.Errorf("%w: %s of team %s (for environment %q or team-wide): PUT /api/v1/teams/%s/secrets/%s",
		ErrNotFound, p.Name, p.Team, p.Environment, p.Team, p.Name)
}

func (s *Service) record(ctx context.Context, actor, action, team, target string, details map[string]any) error {
	if s.cfg.Audit == nil {
		return nil
	}
	if actor == "" {
		actor = "anonymous"
	}
	return s.cfg.Audit.Record(ctx, audit.Entry{Actor: actor, Action: action, Team: team, Target: target, Details: details})
}

// RotateResult says what Rotate did.
type RotateResult struct {
	Key      string   // the id of the key every secret is now sealed under
	Resealed int      // secrets sealed again
	Dropped  []string // ids of the keys removed from the key file
}

// Rotate seals every secret under a new current key. With a key file it writes a new key
// first in the file (the old ones stay readable meanwhile, also for a server running on
// the same file), re-seals every secret, then drops the old keys. With keys from
// PAVED_SECRET_KEY, which paved cannot rewrite, it re-seals under the first key: put a new
// key first, run Rotate, then remove the old keys from the variable.
func (s *Service) Rotate(ctx context.Context, actor string) (RotateResult, error) {
	keys, err := s.cfg.Keys.Keys()
	if err != nil {
		return RotateResult{}, err
	}
	if path := s.cfg.Keys.Path(); path != "" {
		k, err := NewKey()
		if err != nil {
			return RotateResult{}, err
		}
		if err := WriteKeyFile(path, append([]Key{k}, keys...)); err != nil {
			return RotateResult{}, err
		}
		if keys, err = s.cfg.Keys.Keys(); err != nil {
			return RotateResult{}, err
		}
		if keys[0].ID != k.ID {
			return RotateResult{}, fmt.Errorf("secret: rotate: the key file %s changed under us; run rotate-key again", path)
		}
	}
	current := keys[0].ID
	res := RotateResult{Key: current}
	// Again until nothing is left under an old key: a secret put by a server that had not
	// yet re-read the key file is still sealed under the old one.
	for round := 0; ; round++ {
		old, err := s.cfg.Store.SecretList(ctx, store.SecretListParams{NotKeyID: current})
		if err != nil {
			return res, err
		}
		if len(old) == 0 {
			break
		}
		if round == 10 {
			return res, fmt.Errorf("secret: rotate: %d secrets are still sealed under old keys after 10 rounds; is a server writing with a stale key?", len(old))
		}
		for _, sec := range old {
			ad := additionalData(sec.Team, sec.Environment, sec.Name)
			v, err := s.cfg.Keys.Open(sec.KeyID, sec.Ciphertext, ad)
			if err != nil {
				return res, fmt.Errorf("secret: rotate: %s of team %s: %w", sec.Name, sec.Team, err)
			}
			id, sealed, err := s.cfg.Keys.Seal(v, ad)
			if err != nil {
				return res, err
			}
			ok, err := s.cfg.Store.SecretRekey(ctx, store.SecretRekeyParams{Team: sec.Team, Environment: sec.Environment,
				Name: sec.Name, OldKeyID: sec.KeyID, KeyID: id, Ciphertext: sealed})
			if err != nil {
				return res, err
			}
			if ok {
				res.Resealed++
			}
		}
	}
	if path := s.cfg.Keys.Path(); path != "" && len(keys) > 1 {
		if err := WriteKeyFile(path, keys[:1]); err != nil {
			return res, err
		}
		for _, k := range keys[1:] {
			res.Dropped = append(res.Dropped, k.ID)
		}
	}
	err = s.record(ctx, actor, audit.ActionSecretRotate, "", current,
		map[string]any{"resealed": res.Resealed, "dropped": res.Dropped})
	return res, err
}
