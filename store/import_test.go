// Tests of the bulk import (import.go): records keep the ids, time stamps and
// revisions the caller chose, records whose id or email exists already are
// skipped and counted out, a re-run imports nothing, and an empty batch is a
// no-op.
package store

import (
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestImportUsers(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	created := time.Date(2023, 4, 5, 6, 7, 8, 0, time.UTC)
	users := []User{
		{ID: bson.NewObjectID(), Name: "I1", Email: "i1@example.com", PasswordHash: "h", Status: StatusActive, Role: RoleAdmin, CreatedAt: created, UpdatedAt: created.Add(time.Hour), Revision: 1},
		{ID: bson.NewObjectID(), Name: "I2", Email: "i2@example.com", PasswordHash: "h", Status: StatusInactive, Role: RoleMember, CreatedAt: created, UpdatedAt: created, Revision: 3},
	}
	n, err := s.ImportUsers(ctx, users)
	if err != nil || n != 2 {
		t.Fatalf("ImportUsers = %d, %v; want 2", n, err)
	}
	got, err := s.GetUser(ctx, users[0].ID)
	if err != nil || got.Name != "I1" || got.Role != RoleAdmin || !got.CreatedAt.Equal(created) || !got.UpdatedAt.Equal(created.Add(time.Hour)) || got.Revision != 1 {
		t.Errorf("imported user = %+v, %v", got, err)
	}
	if got, err := s.GetUserByEmail(ctx, "i2@example.com"); err != nil || got.ID != users[1].ID || got.Status != StatusInactive || got.Revision != 3 {
		t.Errorf("imported user by email = %+v, %v", got, err)
	}

	// Again: everything exists by id.
	if n, err := s.ImportUsers(ctx, users); err != nil || n != 0 {
		t.Errorf("re-import = %d, %v; want 0, nil", n, err)
	}
	// A batch mixing an existing id, a new user, and a taken email under a new id.
	mixed := []User{
		users[0],
		{ID: bson.NewObjectID(), Name: "I3", Email: "i3@example.com", Status: StatusActive, Role: RoleMember, CreatedAt: created, UpdatedAt: created, Revision: 1},
		{ID: bson.NewObjectID(), Name: "Dup", Email: "i2@example.com", Status: StatusActive, Role: RoleMember, CreatedAt: created, UpdatedAt: created, Revision: 1},
	}
	if n, err := s.ImportUsers(ctx, mixed); err != nil || n != 1 {
		t.Errorf("mixed import = %d, %v; want 1 new", n, err)
	}
	if _, err := s.GetUser(ctx, mixed[2].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("the user with a taken email was imported: %v", err)
	}
	if c := countDocs(t, s.users.Collection, nil); c != 3 {
		t.Errorf("%d users, want 3", c)
	}
	if n, err := s.ImportUsers(ctx, nil); err != nil || n != 0 {
		t.Errorf("empty import = %d, %v", n, err)
	}
}

func TestImportCustomersAndInteractions(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	created := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	owner := bson.NewObjectID()
	customers := []Customer{
		{ID: bson.NewObjectID(), Name: "C1", Email: "c1@example.com", Status: StatusActive, Tags: []string{"t"}, OwnerID: &owner, CreatedAt: created, UpdatedAt: created, Revision: 1},
		{ID: bson.NewObjectID(), Name: "C2", Email: "c2@example.com", Status: StatusActive, CreatedAt: created, UpdatedAt: created, Revision: 1},
		{ID: bson.NewObjectID(), Name: "C2 again", Email: "c2@example.com", Status: StatusActive, CreatedAt: created, UpdatedAt: created, Revision: 1},
	}
	n, err := s.ImportCustomers(ctx, customers)
	if err != nil || n != 2 {
		t.Fatalf("ImportCustomers = %d, %v; want 2 (the third repeats an email)", n, err)
	}
	got, err := s.GetCustomer(ctx, customers[0].ID)
	if err != nil || got.OwnerID == nil || *got.OwnerID != owner || !got.CreatedAt.Equal(created) || len(got.Tags) != 1 {
		t.Errorf("imported customer = %+v, %v", got, err)
	}

	sched := created.Add(48 * time.Hour)
	interactions := []Interaction{
		{ID: bson.NewObjectID(), UserID: owner, CustomerID: customers[0].ID, Type: "Call", Status: "Open", ScheduledAt: &sched, CreatedAt: created, UpdatedAt: created, Revision: 1},
		{ID: bson.NewObjectID(), UserID: owner, CustomerID: customers[1].ID, Type: "Note", Status: "Resolved", CreatedAt: created, UpdatedAt: created, Revision: 2},
	}
	if n, err := s.ImportInteractions(ctx, interactions); err != nil || n != 2 {
		t.Fatalf("ImportInteractions = %d, %v; want 2", n, err)
	}
	if n, err := s.ImportInteractions(ctx, interactions); err != nil || n != 0 {
		t.Errorf("re-import of interactions = %d, %v; want 0", n, err)
	}
	it, err := s.GetInteraction(ctx, interactions[0].ID)
	if err != nil || it.ScheduledAt == nil || !it.ScheduledAt.Equal(sched) || it.Revision != 1 || !it.CreatedAt.Equal(created) {
		t.Errorf("imported interaction = %+v, %v", it, err)
	}
	// Imported records take part in the usual rules: the customer is referenced.
	if err := s.DeleteCustomer(ctx, customers[0].ID, 1, false, nil); !errors.Is(err, ErrReferenced) {
		t.Errorf("DeleteCustomer of an imported customer with an imported interaction = %v, want ErrReferenced", err)
	}
}
