// Package storetest is the conformance suite of paved's stores. Every implementation (sqlite
// and postgres) runs Exercise from its own tests against a real database, so that the
// scheduler and the API can rely on one behaviour whichever store is configured: atomic
// appends with an expected sequence number, the run projection, logs that tolerate retries,
// and registered repos.
package storetest

import (
	"context"
	"testing"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/trigger"
)

// Store is every method the suite exercises: the union of what the store's consumers
// (schedule, api) declare. It is this wide only because a conformance suite needs all of it.
type Store interface {
	EventAppend(ctx context.Context, p store.EventAppendParams) error
	EventList(ctx context.Context, p store.EventListParams) ([]run.Event, error)
	RunGet(ctx context.Context, id string) (run.Summary, error)
	RunList(ctx context.Context, p store.RunListParams) ([]run.Summary, error)
	LogAppend(ctx context.Context, lines []run.LogLine) error
	LogList(ctx context.Context, p store.LogListParams) ([]run.LogLine, error)
	LogSearch(ctx context.Context, p store.LogSearchParams) ([]run.LogLine, error)
	RepoPut(ctx context.Context, r trigger.Repo) error
	RepoGet(ctx context.Context, fullName string) (trigger.Repo, error)
	RepoList(ctx context.Context) ([]trigger.Repo, error)
	TriggerStore    // the trigger inbox (triggers.go)
	DeploymentStore // deployment history (deployments.go)
	PromotionStore  // freight and promotions (promotions.go)
	QuotaStore      // team quotas (quotas.go)
	SecretStore     // encrypted secrets (secrets.go)
	AuditStore      // the hash-chained audit log (audit.go)
	access.Store    // users, teams, roles, tokens (access.go)
	LeaseStore      // leases of runs and environments (leases.go)
	AgentStore      // agent tokens (agents.go)
}

// Harness tells the suite how to get stores.
type Harness struct {
	// Open returns a store over a new, empty database of its own (subtests run in parallel)
	// and arranges, with t.Cleanup, for it to be closed and the database removed. Required.
	Open func(t *testing.T) Store
	// Reopen closes s and returns a new store over the same database, as a restarted
	// server would open it; the new store is cleaned up like one from Open. Nil for a store
	// whose data does not outlive Close (SQLite ":memory:"): the subtests that need it are
	// skipped.
	Reopen func(t *testing.T, s Store) Store
}

// Exercise runs the suite. Each subtest opens its own store.
func Exercise(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: Harness.Open is required")
	}
	for _, c := range []struct {
		name string
		test func(*testing.T, Harness)
	}{
		{"EventRoundTrip", testEventRoundTrip},
		{"EventAppendRejectsBadBatch", testEventAppendRejectsBadBatch},
		{"EventAppendConflict", testEventAppendConflict},
		{"EventAppendRace", testEventAppendRace},
		{"EventAppendManyRuns", testEventAppendManyRuns},
		{"EventAppendConflictIsolated", testEventAppendConflictIsolated},
		{"WriteCancelledAmongMany", testWriteCancelledAmongMany},
		{"EventListAfterSeqLimit", testEventListAfterSeqLimit},
		{"EventListWhileAppending", testEventListWhileAppending},
		{"RunProjection", testRunProjection},
		{"RunGetNotFound", testRunGetNotFound},
		{"RunList", testRunList},
		{"RunListDefaultLimit", testRunListDefaultLimit},
		{"NegativeLimit", testNegativeLimit},
		{"Logs", testLogs},
		{"LogsDuplicate", testLogsDuplicate},
		{"LogsUnknownRun", testLogsUnknownRun},
		{"LogSearch", testLogSearch},
		{"LogsBytes", testLogsBytes},
		{"EventBytes", testEventBytes},
		{"Repos", testRepos},
		{"Reopen", testReopen},
		{"TriggerRoundTrip", testTriggerRoundTrip},
		{"TriggerDedup", testTriggerDedup},
		{"TriggerPending", testTriggerPending},
		{"TriggerRace", testTriggerRace},
		{"TriggerReopen", testTriggerReopen},
		{"DeploymentRoundTrip", testDeploymentRoundTrip},
		{"DeploymentFinish", testDeploymentFinish},
		{"DeploymentList", testDeploymentList},
		{"DeploymentFinishRace", testDeploymentFinishRace},
		{"DeploymentReopen", testDeploymentReopen},
		{"Freight", testFreight},
		{"PromotionRoundTrip", testPromotionRoundTrip},
		{"PromotionUpdateRace", testPromotionUpdateRace},
		{"PromotionList", testPromotionList},
		{"PromotionReopen", testPromotionReopen},
		{"TeamQuotas", testTeamQuotas},
		{"Secrets", testSecrets},
		{"AuditAppendList", testAuditAppendList},
		{"AuditAppendRace", testAuditAppendRace},
		{"AuditPrune", testAuditPrune},
		{"AccessUsersTeams", testAccessUsersTeams},
		{"AccessMembers", testAccessMembers},
		{"AccessTokens", testAccessTokens},
		{"AccessUserRemove", testAccessUserRemove},
		{"AccessLastAdminRace", testAccessLastAdminRace},
		{"AccessSessionsRevoke", testAccessSessionsRevoke},
		{"Leases", testLeases},
		{"LeaseRace", testLeaseRace},
		{"RunLeaseClaim", testRunLeaseClaim},
		{"RunLeaseClaimRace", testRunLeaseClaimRace},
		{"AgentTokens", testAgentTokens},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, h)
		})
	}
}
