package store

import "time"

// Leases let many servers share one database without doing the same work twice: a lease
// names a piece of work ("run/ID", "env/NAME"), the server that holds it, and until when.
// The holder renews it by a heartbeat; once it has expired, any server may take it. Stores
// take and renew leases with one conditional statement, so two servers never both think
// they hold one.

// RunLeasePrefix starts the lease name of a run: RunLeasePrefix + run id.
const RunLeasePrefix = "run/"

// LeaseParams takes (LeaseAcquire) or gives up (LeaseRelease) the lease Name for Owner.
// LeaseAcquire succeeds when nobody holds Name, its lease expired at or before Now, or
// Owner holds it already; the lease then runs until Until. LeaseRelease needs only Name
// and Owner, and releases nothing another owner holds.
type LeaseParams struct {
	Name, Owner string
	Now, Until  time.Time
}

// LeaseRenewParams extends Owner's leases among Names to Until. A lease Owner holds is
// renewed even when it expired, as long as nobody took it meanwhile: nobody else acted on
// it. LeaseRenew returns the names Owner still holds; any other was taken by another owner
// (or released), and Owner must stop acting on it.
type LeaseRenewParams struct {
	Owner string
	Names []string
	Until time.Time
}

// RunLeaseClaimParams claims unfinished runs that no live lease holds (their server died,
// or never took one), oldest first, at most Limit (0: 100), for Owner until Until; leases
// that expired at or before Now count as free.
type RunLeaseClaimParams struct {
	Owner      string
	Now, Until time.Time
	Limit      int
}

// AgentToken is the record of one agent's token. The token itself is never stored: Hash
// is its SHA-256, hex.
type AgentToken struct {
	Name      string    `json:"name"`
	Hash      string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	// RevokedAt is when it was revoked; zero while it is valid.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}
