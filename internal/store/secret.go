package store

import "time"

// Secret is one encrypted secret of a team, as the store keeps it. The store never sees a
// value: Ciphertext is sealed by internal/secret under the key KeyID names, with the team,
// environment and name as additional data, so a row copied to another scope does not open.
type Secret struct {
	Team string `json:"team"`
	// Environment scopes the secret to deploy stages of one environment; "" means every
	// stage of the team.
	Environment string    `json:"environment"`
	Name        string    `json:"name"`
	KeyID       string    `json:"-"`
	Ciphertext  []byte    `json:"-"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	CreatedBy   string    `json:"created_by,omitempty"`
	UpdatedBy   string    `json:"updated_by,omitempty"`
}

// SecretListParams lists secrets by team, environment and name. Team "" lists every team's
// (key rotation); NotKeyID, when set, keeps only the secrets sealed under another key.
type SecretListParams struct {
	Team     string
	NotKeyID string
}

// SecretRekeyParams replaces a secret's ciphertext with one sealed under another key, only
// if it is still sealed under OldKeyID (a concurrent SecretPut wins); it reports whether it
// replaced it. UpdatedAt is left alone: the value did not change.
type SecretRekeyParams struct {
	Team, Environment, Name string
	OldKeyID                string
	KeyID                   string
	Ciphertext              []byte
}
