package store

import (
	"context"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Customer field names beyond the shared ones.
const (
	customerFieldPhone   = "phone"
	customerFieldNotes   = "notes"
	customerFieldTags    = "tags"
	customerFieldOwnerID = "owner_id"
)

// Customer is a person or company that the team serves.
type Customer struct {
	ID         bson.ObjectID  `bson:"_id"`
	Name       string         `bson:"name"`
	NameKey    string         `bson:"name_key"` // set by the store: see sortKey
	Email      string         `bson:"email"`
	Phone      string         `bson:"phone,omitempty"`
	Company    string         `bson:"company,omitempty"`
	Status     string         `bson:"status"`
	Notes      string         `bson:"notes,omitempty"`
	Tags       []string       `bson:"tags,omitempty"`
	OwnerID    *bson.ObjectID `bson:"owner_id,omitempty"`
	CreatedAt  time.Time      `bson:"created_at"`
	UpdatedAt  time.Time      `bson:"updated_at"`
	Revision   int64          `bson:"revision"`
	DeletingAt *time.Time     `bson:"deleting_at,omitempty"`
}

// normalize fills what documents written by the original CRM lack.
func (c *Customer) normalize() {
	fillTimestamps(c.ID, &c.CreatedAt, &c.UpdatedAt)
	if c.Status != StatusInactive {
		c.Status = StatusActive
	}
	if c.Tags == nil {
		c.Tags = []string{}
	}
}

// CustomerChanges lists the fields to change; nil leaves a field as it is. An
// empty string (or an empty, non-nil Tags) removes an optional field.
type CustomerChanges struct {
	Name, Email, Phone, Company, Status, Notes *string
	Tags                                       *[]string
	OwnerID                                    *bson.ObjectID
}

// Effective returns the changes that would alter c (see dropSame).
func (ch CustomerChanges) Effective(c *Customer) CustomerChanges {
	dropSame(&ch.Name, c.Name)
	dropSame(&ch.Email, c.Email)
	dropSame(&ch.Phone, c.Phone)
	dropSame(&ch.Company, c.Company)
	dropSame(&ch.Status, c.Status)
	dropSame(&ch.Notes, c.Notes)
	if ch.Tags != nil && slices.Equal(*ch.Tags, c.Tags) {
		ch.Tags = nil
	}
	if c.OwnerID != nil {
		dropSame(&ch.OwnerID, *c.OwnerID)
	}
	return ch
}

// None reports whether ch changes nothing.
func (ch CustomerChanges) None() bool { return ch == CustomerChanges{} }

// CustomerFilter selects customers for List; zero fields do not filter.
type CustomerFilter struct {
	Status, Company string
	Email           string          // exact, as stored (lower-cased)
	Tags            []string        // any of them
	OwnerIDs        []bson.ObjectID // any of them
	Search          string          // case-insensitive substring of name, email, company or phone
	CreatedAfter    *time.Time
	CreatedBefore   *time.Time
	UpdatedSince    *time.Time
}

// CreateCustomer stores a new customer, filling ID, timestamps and revision.
// The email must already be lower-cased; a taken email is ErrDuplicate, and an
// owner that does not exist is a *MissingReferenceError.
func (s *Store) CreateCustomer(ctx context.Context, c *Customer) error {
	c.ID = bson.NewObjectID()
	c.NameKey = sortKey(c.Name)
	c.CreatedAt = now()
	c.UpdatedAt = c.CreatedAt
	c.Revision = 1
	return s.insertReferencing(ctx, s.customers, c.ID, c, s.customerReferences(c.OwnerID))
}

func (s *Store) customerReferences(owner *bson.ObjectID) []outgoing {
	if owner == nil {
		return nil
	}
	return []outgoing{{s.users, *owner, customerFieldOwnerID}}
}

// GetCustomer returns the customer with id, or ErrNotFound.
func (s *Store) GetCustomer(ctx context.Context, id bson.ObjectID) (*Customer, error) {
	var c Customer
	if err := s.getByID(ctx, s.customers, id, &c); err != nil {
		return nil, err
	}
	c.normalize()
	return &c, nil
}

// ListCustomers returns one page of customers.
func (s *Store) ListCustomers(ctx context.Context, f CustomerFilter, opts ListOptions) (Page[Customer], error) {
	var filter bson.D
	switch f.Status {
	case StatusActive:
		filter = append(filter, bson.E{Key: fieldStatus, Value: bson.D{{Key: "$in", Value: bson.A{StatusActive, nil}}}})
	case StatusInactive:
		filter = append(filter, bson.E{Key: fieldStatus, Value: StatusInactive})
	}
	if f.Company != "" {
		filter = append(filter, bson.E{Key: fieldCompany, Value: f.Company})
	}
	if f.Email != "" {
		filter = append(filter, bson.E{Key: fieldEmail, Value: f.Email})
	}
	if len(f.Tags) > 0 {
		filter = append(filter, anyOf(customerFieldTags, f.Tags))
	}
	if len(f.OwnerIDs) > 0 {
		filter = append(filter, anyOf(customerFieldOwnerID, f.OwnerIDs))
	}
	if f.Search != "" {
		filter = append(filter, searchCondition(f.Search, fieldName, fieldEmail, fieldCompany, customerFieldPhone))
	}
	if created := timeRange(f.CreatedAfter, f.CreatedBefore); created != nil {
		filter = append(filter, bson.E{Key: fieldCreatedAt, Value: created})
	}
	if f.UpdatedSince != nil {
		filter = append(filter, updatedSince(*f.UpdatedSince))
	}
	return list(ctx, s, s.customers, filter, opts, (*Customer).normalize)
}

// UpdateCustomer applies changes to the customer at revision rev and returns it
// as stored. ErrStale means it is no longer at rev, ErrDuplicate that the new
// email is taken, and a *MissingReferenceError that the new owner does not exist.
func (s *Store) UpdateCustomer(ctx context.Context, id bson.ObjectID, rev int64, ch CustomerChanges) (*Customer, error) {
	var c changes
	c.text(fieldName, ch.Name)
	if ch.Name != nil {
		c.value(fieldNameKey, sortKey(*ch.Name))
	}
	c.text(fieldEmail, ch.Email)
	c.text(customerFieldPhone, ch.Phone)
	c.text(fieldCompany, ch.Company)
	c.text(fieldStatus, ch.Status)
	c.text(customerFieldNotes, ch.Notes)
	switch {
	case ch.Tags == nil:
	case len(*ch.Tags) == 0:
		c.remove(customerFieldTags)
	default:
		c.value(customerFieldTags, *ch.Tags)
	}
	if ch.OwnerID != nil {
		c.value(customerFieldOwnerID, *ch.OwnerID)
	}

	var updated Customer
	if err := s.updateReferencing(ctx, s.customers, id, rev, c, s.customerReferences(ch.OwnerID), &updated); err != nil {
		return nil, err
	}
	updated.normalize()
	return &updated, nil
}

// DeleteCustomer deletes the customer at revision rev. A customer with
// interactions is not deleted (*ReferencedError) unless cascade is set, which
// deletes the interactions too. With cascadeOnlyOf set, the cascade may only
// delete that user's interactions: if others exist, nothing is deleted
// (ErrCascadeRefused), or, if they came during the cascade, only that user's
// are (ErrCascadeRefusedPartly).
func (s *Store) DeleteCustomer(ctx context.Context, id bson.ObjectID, rev int64, cascade bool, cascadeOnlyOf *bson.ObjectID) error {
	var keep bson.D
	if cascadeOnlyOf != nil {
		keep = bson.D{{Key: interactionFieldUserID, Value: bson.D{{Key: "$ne", Value: *cascadeOnlyOf}}}}
	}
	return s.deleteReferenced(ctx, s.customers, id, rev, []reference{{s.interactions, interactionFieldCustomerID}}, cascade, keep, nil)
}
