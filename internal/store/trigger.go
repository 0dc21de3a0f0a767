package store

import (
	"time"

	"github.com/paved/paved/internal/trigger"
)

// TriggerAddParams puts accepted triggers into the inbox, all in one transaction that is
// on disk (fsynced) when TriggerAdd returns: a caller may then acknowledge every one of them.
// Each trigger needs ID and ReceivedAt.
//
// A trigger is a duplicate, and is not stored, when its (Provider, DeliveryID) is already in
// the inbox (DeliveryID not empty), or when a trigger with the same DedupKey was added less
// than Window before its ReceivedAt (Window 0: only delivery ids count). Both rules hold
// under concurrency and across restarts: stores enforce them with unique keys.
type TriggerAddParams struct {
	Triggers []trigger.Trigger
	Window   time.Duration
}

// TriggerAdded is TriggerAdd's answer for one trigger, in the order of the params: the id of
// the stored trigger, or for a duplicate the id of the trigger it duplicates.
type TriggerAdded struct {
	ID        string
	Duplicate bool
}

// TriggerRecord is a trigger in the inbox with what processing made of it.
type TriggerRecord struct {
	trigger.Trigger
	ProcessedAt *time.Time `json:"processed_at,omitempty"` // nil while pending
	Runs        []string   `json:"runs"`                   // the runs it started
	Note        string     `json:"note,omitempty"`         // why it started none, or what failed
}

// TriggerListParams lists the inbox. Pending lists only unprocessed triggers, oldest first
// (the order to process them in); otherwise all, newest first. Limit 0 means 100.
type TriggerListParams struct {
	Pending bool
	Limit   int
}

// TriggerDoneParams records that a trigger was processed: the runs it started and a note.
type TriggerDoneParams struct {
	ID   string
	At   time.Time
	Runs []string
	Note string
}
