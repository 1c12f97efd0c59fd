package store

import (
	"context"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Interaction field names beyond the shared ones.
const (
	interactionFieldUserID      = "user_id"
	interactionFieldCustomerID  = "customer_id"
	interactionFieldType        = "type"
	interactionFieldDescription = "description"
	interactionFieldScheduledAt = "scheduled_at"
)

// Interaction types and statuses as stored.
var (
	InteractionTypes    = []string{"Meeting", "Ticket", "Call", "Email", "Note", "Task"}
	InteractionStatuses = []string{"Open", "InProgress", "Resolved", "Cancelled"}
)

// Interaction is something that happened, or will happen, between a user and a
// customer.
type Interaction struct {
	ID          bson.ObjectID `bson:"_id"`
	UserID      bson.ObjectID `bson:"user_id"`
	CustomerID  bson.ObjectID `bson:"customer_id"`
	Type        string        `bson:"type"`
	Description string        `bson:"description,omitempty"`
	Status      string        `bson:"status"`
	ScheduledAt *time.Time    `bson:"scheduled_at,omitempty"`
	CreatedAt   time.Time     `bson:"created_at"`
	UpdatedAt   time.Time     `bson:"updated_at"`
	Revision    int64         `bson:"revision"`
}

// MarshalBSON writes it as its struct tags say, except that a ScheduledAt of
// Go's zero time (0001-01-01T00:00:00Z) is written too: the driver's
// omitempty asks a non-nil *time.Time whether it IsZero, and would drop that
// valid instant as if there were no time. Only nil is no time.
func (it Interaction) MarshalBSON() ([]byte, error) {
	type fields Interaction // the same tags, without this method
	doc := struct {
		Fields fields `bson:",inline"` // exported: the driver skips others
		// Shadows Fields.ScheduledAt. A *bson.DateTime has no IsZero, so
		// omitempty omits it only when nil.
		ScheduledAt *bson.DateTime `bson:"scheduled_at,omitempty"`
	}{Fields: fields(it)}
	if it.ScheduledAt != nil {
		at := bson.NewDateTimeFromTime(*it.ScheduledAt)
		doc.ScheduledAt = &at
	}
	return bson.Marshal(doc)
}

// normalize fills what documents written by the original CRM lack, and maps
// their spellings of type and status onto the ones the API knows.
func (it *Interaction) normalize() {
	fillTimestamps(it.ID, &it.CreatedAt, &it.UpdatedAt)
	it.Type = canonical(it.Type, InteractionTypes, "Note")
	it.Status = canonical(it.Status, InteractionStatuses, "Open")
	if it.ScheduledAt != nil {
		t := it.ScheduledAt.UTC()
		it.ScheduledAt = &t
	}
}

// canonical returns the member of known that equals v ignoring case and
// spaces/underscores ("in_progress" → "InProgress"), or fallback.
func canonical(v string, known []string, fallback string) string {
	squash := strings.NewReplacer(" ", "", "_", "", "-", "")
	key := squash.Replace(v)
	for _, k := range known {
		if strings.EqualFold(key, k) {
			return k
		}
	}
	return fallback
}

// InteractionChanges lists the fields to change; nil leaves a field as it is.
// An empty Description removes it. ScheduledAt pointing to nil removes the
// time, and to a time sets it: any time, Go's zero time (0001-01-01T00:00:00Z)
// included, which is a valid instant that the API accepts, not "none".
type InteractionChanges struct {
	UserID, CustomerID        *bson.ObjectID
	Type, Description, Status *string
	ScheduledAt               **time.Time
}

// Effective returns the changes that would alter it (see dropSame). Times
// compare at the millisecond, as stored.
func (ch InteractionChanges) Effective(it *Interaction) InteractionChanges {
	dropSame(&ch.UserID, it.UserID)
	dropSame(&ch.CustomerID, it.CustomerID)
	dropSame(&ch.Type, it.Type)
	dropSame(&ch.Description, it.Description)
	dropSame(&ch.Status, it.Status)
	if ch.ScheduledAt != nil {
		at, cur := *ch.ScheduledAt, it.ScheduledAt
		if at == nil && cur == nil || at != nil && cur != nil && at.Truncate(time.Millisecond).Equal(*cur) {
			ch.ScheduledAt = nil
		}
	}
	return ch
}

// None reports whether ch changes nothing.
func (ch InteractionChanges) None() bool { return ch == InteractionChanges{} }

// InteractionFilter selects interactions for List; zero fields do not filter.
type InteractionFilter struct {
	CustomerID      *bson.ObjectID
	UserIDs         []bson.ObjectID // any of them
	Types, Statuses []string        // any of them
	Search          string          // case-insensitive substring of the description
	ScheduledFrom   *time.Time
	ScheduledTo     *time.Time
	CreatedAfter    *time.Time
	CreatedBefore   *time.Time
	UpdatedSince    *time.Time
}

// CreateInteraction stores a new interaction, filling ID, timestamps and
// revision. A customer or user that does not exist is a *MissingReferenceError.
func (s *Store) CreateInteraction(ctx context.Context, it *Interaction) error {
	it.ID = bson.NewObjectID()
	it.CreatedAt = now()
	it.UpdatedAt = it.CreatedAt
	it.Revision = 1
	if it.ScheduledAt != nil {
		// As stored: BSON keeps milliseconds, and the caller answers with it.
		t := it.ScheduledAt.UTC().Truncate(time.Millisecond)
		it.ScheduledAt = &t
	}
	return s.insertReferencing(ctx, s.interactions, it.ID, it, s.interactionReferences(&it.CustomerID, &it.UserID))
}

func (s *Store) interactionReferences(customer, user *bson.ObjectID) []outgoing {
	var refs []outgoing
	if customer != nil {
		refs = append(refs, outgoing{s.customers, *customer, interactionFieldCustomerID})
	}
	if user != nil {
		refs = append(refs, outgoing{s.users, *user, interactionFieldUserID})
	}
	return refs
}

// GetInteraction returns the interaction with id, or ErrNotFound.
func (s *Store) GetInteraction(ctx context.Context, id bson.ObjectID) (*Interaction, error) {
	var it Interaction
	if err := s.getByID(ctx, s.interactions, id, &it); err != nil {
		return nil, err
	}
	it.normalize()
	return &it, nil
}

// ListInteractions returns one page of interactions.
func (s *Store) ListInteractions(ctx context.Context, f InteractionFilter, opts ListOptions) (Page[Interaction], error) {
	var filter bson.D
	if f.CustomerID != nil {
		filter = append(filter, bson.E{Key: interactionFieldCustomerID, Value: *f.CustomerID})
	}
	if len(f.UserIDs) > 0 {
		filter = append(filter, anyOf(interactionFieldUserID, f.UserIDs))
	}
	if len(f.Types) > 0 {
		filter = append(filter, anyOf(interactionFieldType, f.Types))
	}
	if len(f.Statuses) > 0 {
		filter = append(filter, anyOf(fieldStatus, f.Statuses))
	}
	if f.Search != "" {
		filter = append(filter, searchCondition(f.Search, interactionFieldDescription))
	}
	if scheduled := timeRange(f.ScheduledFrom, f.ScheduledTo); scheduled != nil {
		filter = append(filter, bson.E{Key: interactionFieldScheduledAt, Value: scheduled})
	}
	if created := timeRange(f.CreatedAfter, f.CreatedBefore); created != nil {
		filter = append(filter, bson.E{Key: fieldCreatedAt, Value: created})
	}
	if f.UpdatedSince != nil {
		filter = append(filter, updatedSince(*f.UpdatedSince))
	}
	return list(ctx, s, s.interactions, filter, opts, (*Interaction).normalize)
}

// UpdateInteraction applies changes to the interaction at revision rev and
// returns it as stored. ErrStale means it is no longer at rev, and a
// *MissingReferenceError that a new customer or user does not exist.
func (s *Store) UpdateInteraction(ctx context.Context, id bson.ObjectID, rev int64, ch InteractionChanges) (*Interaction, error) {
	var c changes
	if ch.UserID != nil {
		c.value(interactionFieldUserID, *ch.UserID)
	}
	if ch.CustomerID != nil {
		c.value(interactionFieldCustomerID, *ch.CustomerID)
	}
	if ch.Type != nil {
		c.value(interactionFieldType, *ch.Type)
	}
	if ch.Status != nil {
		c.value(fieldStatus, *ch.Status)
	}
	c.text(interactionFieldDescription, ch.Description)
	switch {
	case ch.ScheduledAt == nil:
	case *ch.ScheduledAt == nil:
		c.remove(interactionFieldScheduledAt)
	default:
		c.value(interactionFieldScheduledAt, (*ch.ScheduledAt).UTC())
	}

	var it Interaction
	refs := s.interactionReferences(ch.CustomerID, ch.UserID)
	if err := s.updateReferencing(ctx, s.interactions, id, rev, c, refs, &it); err != nil {
		return nil, err
	}
	it.normalize()
	return &it, nil
}

// DeleteInteraction deletes the interaction at revision rev.
func (s *Store) DeleteInteraction(ctx context.Context, id bson.ObjectID, rev int64) error {
	return s.deleteReferenced(ctx, s.interactions, id, rev, nil, false, nil, nil)
}
