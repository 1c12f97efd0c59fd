// Tests of the users collection: create/get/update/delete, lookup by email,
// the unique email, the first-user bootstrap (also under concurrency), the
// conditional writes on revision (also under concurrency), references from
// customers and interactions, the last-admin rule, list filters, and users as
// the original CRM stored them.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

func TestCreateAndGetUser(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()

	before := time.Now().Truncate(time.Millisecond)
	u := &User{Name: "Grace Hopper", Email: "grace@example.com", PasswordHash: "argon2id$hash", Company: "Navy", Status: StatusActive, Role: RoleMember}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	after := time.Now()
	if u.ID.IsZero() || u.Revision != 1 {
		t.Errorf("CreateUser filled ID %v, revision %d; want a new id and revision 1", u.ID, u.Revision)
	}
	if u.CreatedAt.Before(before) || u.CreatedAt.After(after) || !u.UpdatedAt.Equal(u.CreatedAt) {
		t.Errorf("created_at %v (want within [%v, %v]), updated_at %v (want equal)", u.CreatedAt, before, after, u.UpdatedAt)
	}
	if u.CreatedAt.Location() != time.UTC || u.CreatedAt.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("created_at %v is not UTC at millisecond precision", u.CreatedAt)
	}

	for name, get := range map[string]func() (*User, error){
		"GetUser":        func() (*User, error) { return s.GetUser(ctx, u.ID) },
		"GetUserByEmail": func() (*User, error) { return s.GetUserByEmail(ctx, "grace@example.com") },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.ID != u.ID || got.Name != "Grace Hopper" || got.Email != "grace@example.com" ||
			got.PasswordHash != "argon2id$hash" || got.Company != "Navy" || got.Status != StatusActive ||
			got.Role != RoleMember || got.Revision != 1 || got.DeletingAt != nil {
			t.Errorf("%s = %+v", name, got)
		}
		if !got.CreatedAt.Equal(u.CreatedAt) || !got.UpdatedAt.Equal(u.UpdatedAt) {
			t.Errorf("%s times %v/%v, want %v/%v as returned by CreateUser", name, got.CreatedAt, got.UpdatedAt, u.CreatedAt, u.UpdatedAt)
		}
	}

	if _, err := s.GetUser(ctx, bson.NewObjectID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetUser(unknown) = %v, want ErrNotFound", err)
	}
	for _, email := range []string{"nobody@example.com", "GRACE@example.com", ""} {
		if _, err := s.GetUserByEmail(ctx, email); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetUserByEmail(%q) = %v, want ErrNotFound (emails are stored lower-cased)", email, err)
		}
	}
}

func TestUserEmailIsUnique(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	first := mustCreateUser(t, s, "First", "same@example.com", RoleMember)
	err := s.CreateUser(ctx, &User{Name: "Second", Email: "same@example.com", Status: StatusActive, Role: RoleMember})
	if !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second CreateUser with the same email = %v, want ErrDuplicate", err)
	}
	if n := countDocs(t, s.users.Collection, bson.D{{Key: "email", Value: "same@example.com"}}); n != 1 {
		t.Errorf("%d users with the email, want 1", n)
	}

	other := mustCreateUser(t, s, "Other", "other@example.com", RoleMember)
	_, err = s.UpdateUser(ctx, other.ID, other.Revision, UserChanges{Email: ptr("same@example.com"), Name: ptr("Renamed")})
	if !errors.Is(err, ErrDuplicate) {
		t.Fatalf("UpdateUser onto a taken email = %v, want ErrDuplicate", err)
	}
	got, err := s.GetUser(ctx, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != "other@example.com" || got.Name != "Other" || got.Revision != 1 {
		t.Errorf("after the refused update: %+v, want it unchanged", got)
	}
	if got, _ := s.GetUser(ctx, first.ID); got.Email != "same@example.com" {
		t.Errorf("the first user's email became %q", got.Email)
	}
	// Changing to its own email, or to a free one, is fine.
	upd, err := s.UpdateUser(ctx, other.ID, 1, UserChanges{Email: ptr("other@example.com")})
	if err != nil || upd.Revision != 2 {
		t.Fatalf("UpdateUser to its own email: %+v, %v", upd, err)
	}
	if _, err := s.UpdateUser(ctx, other.ID, 2, UserChanges{Email: ptr("free@example.com")}); err != nil {
		t.Fatalf("UpdateUser to a free email: %v", err)
	}
	if _, err := s.GetUserByEmail(ctx, "free@example.com"); err != nil {
		t.Errorf("lookup by the new email: %v", err)
	}
}

func TestAnyUser(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	if any, err := s.AnyUser(ctx); err != nil || any {
		t.Fatalf("AnyUser on an empty database = %v, %v; want false", any, err)
	}
	u := mustCreateUser(t, s, "Only", "only@example.com", RoleMember)
	if any, err := s.AnyUser(ctx); err != nil || !any {
		t.Fatalf("AnyUser with one user = %v, %v; want true", any, err)
	}
	if _, err := s.users.DeleteOne(ctx, bson.D{{Key: "_id", Value: u.ID}}); err != nil {
		t.Fatal(err)
	}
	if any, err := s.AnyUser(ctx); err != nil || any {
		t.Fatalf("AnyUser after deleting the only user = %v, %v; want false", any, err)
	}
}

func TestCreateFirstUser(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()

	// The first user becomes an active admin whatever the caller asked for.
	u := &User{Name: "Boot", Email: "boot@example.com", PasswordHash: "h", Status: StatusInactive, Role: RoleMember}
	if err := s.CreateFirstUser(ctx, u); err != nil {
		t.Fatalf("CreateFirstUser on an empty database: %v", err)
	}
	got, err := s.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Role != RoleAdmin || got.Status != StatusActive || got.Revision != 1 {
		t.Errorf("first user stored as %+v, want an active admin at revision 1", got)
	}
	if doc := rawDoc(t, s.users.Collection, u.ID); doc["role"] != "admin" || doc["status"] != "active" {
		t.Errorf("first user stored with role %v, status %v", doc["role"], doc["status"])
	}

	err = s.CreateFirstUser(ctx, &User{Name: "Late", Email: "late@example.com", Status: StatusActive})
	if !errors.Is(err, ErrUsersExist) {
		t.Errorf("second CreateFirstUser = %v, want ErrUsersExist", err)
	}
	if n := countDocs(t, s.users.Collection, nil); n != 1 {
		t.Errorf("%d users, want 1", n)
	}
}

func TestCreateFirstUserWhenUsersExist(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	mustCreateUser(t, s, "Existing", "existing@example.com", RoleMember)
	err := s.CreateFirstUser(t.Context(), &User{Name: "Boot", Email: "boot@example.com"})
	if !errors.Is(err, ErrUsersExist) {
		t.Fatalf("CreateFirstUser with a user present = %v, want ErrUsersExist", err)
	}
	if _, err := s.GetUserByEmail(t.Context(), "boot@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused first user was stored: %v", err)
	}
}

// The bootstrap marker: a fresh one (another process is bootstrapping) blocks
// the bootstrap; a stale one (its owner stopped half-way) does not.
func TestCreateFirstUserMarker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		markerAge time.Duration
		wantErr   error
	}{
		{"fresh marker", 5 * time.Second, ErrUsersExist},
		{"stale marker", 2 * time.Minute, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openTestStore(t)
			rawInsert(t, s.meta.Collection, bson.D{{Key: "_id", Value: "bootstrap"}, {Key: "created_at", Value: time.Now().Add(-tc.markerAge)}})
			u := &User{Name: "Boot", Email: "boot@example.com"}
			err := s.CreateFirstUser(t.Context(), u)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("CreateFirstUser = %v, want %v", err, tc.wantErr)
			}
			wantUsers := int64(0)
			if tc.wantErr == nil {
				wantUsers = 1
			}
			if n := countDocs(t, s.users.Collection, nil); n != wantUsers {
				t.Errorf("%d users, want %d", n, wantUsers)
			}
		})
	}
}

func TestCreateFirstUserConcurrent(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	const n = 24
	errs := runConcurrently(n, func(i int) error {
		return s.CreateFirstUser(t.Context(), &User{Name: fmt.Sprintf("Boot %d", i), Email: fmt.Sprintf("boot%d@example.com", i), PasswordHash: "h"})
	})
	ok, exist, other := tallyErrors(errs, ErrUsersExist)
	if ok != 1 || exist != n-1 || len(other) != 0 {
		t.Fatalf("%d bootstraps succeeded, %d got ErrUsersExist, other errors %v; want 1 and %d", ok, exist, other, n-1)
	}
	if c := countDocs(t, s.users.Collection, nil); c != 1 {
		t.Fatalf("%d users after the concurrent bootstrap, want 1", c)
	}
	if c := countDocs(t, s.users.Collection, bson.D{{Key: "role", Value: "admin"}}); c != 1 {
		t.Errorf("%d admins, want 1", c)
	}
}

// Two callers that both find the bootstrap marker stale: the second to
// delete it must not delete the first's fresh claim, or both would bootstrap.
// B claims right after A has read the stale marker, before A deletes it.
func TestClaimMarkerRacingOnAStaleOne(t *testing.T) {
	t.Parallel()
	for _, idOnly := range []bool{true, false} {
		t.Run(fmt.Sprintf("filterByIDOnly=%v", idOnly), func(t *testing.T) {
			t.Parallel()
			// Right after a command succeeds, unlike openHookedStore's hook:
			// before A's delete, A holds the write gate, and B could not write.
			var metaFinds sync.Map // request ids of finds on meta
			var afterRead atomic.Pointer[func()]
			s := openMonitored(t, &event.CommandMonitor{
				Started: func(_ context.Context, e *event.CommandStartedEvent) {
					if c, _ := e.Command.Lookup(e.CommandName).StringValueOK(); e.CommandName == "find" && c == metaCollection {
						metaFinds.Store(e.RequestID, true)
					}
				},
				Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
					if _, ok := metaFinds.Load(e.RequestID); ok {
						if f := afterRead.Swap(nil); f != nil {
							(*f)()
						}
					}
				},
			})
			s.filterByIDOnly = idOnly
			rawInsert(t, s.meta.Collection, bson.D{{Key: "_id", Value: "bootstrap"}, {Key: "created_at", Value: time.Now().Add(-2 * time.Minute)}})

			var errB error
			claimB := func() { errB = s.claimMarker(t.Context(), "bootstrap", time.Minute) }
			afterRead.Store(&claimB)
			errA := s.claimMarker(t.Context(), "bootstrap", time.Minute)
			if afterRead.Load() != nil {
				t.Fatal("B never ran: claimMarker read no marker")
			}
			ok, dup, other := tallyErrors([]error{errA, errB}, ErrDuplicate)
			if ok != 1 || dup != 1 || len(other) != 0 {
				t.Fatalf("claims of a stale marker: A = %v, B = %v; want one to succeed and the other ErrDuplicate", errA, errB)
			}
		})
	}
}

// TestUpgradePasswordHash: a hash replaced by a newer form of the same
// password leaves the user's revision and updated_at alone, and never
// replaces the hash of a password changed since the user was read.
func TestUpgradePasswordHash(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	u := mustCreateUser(t, s, "Hash Owner", "hash.owner@example.com", RoleMember)
	if err := s.UpgradePasswordHash(ctx, u.ID, u.Revision, "newer-hash"); err != nil {
		t.Fatalf("UpgradePasswordHash: %v", err)
	}
	got, err := s.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PasswordHash != "newer-hash" || got.Revision != u.Revision || !got.UpdatedAt.Equal(u.UpdatedAt) {
		t.Errorf("after the upgrade: hash %q, revision %d (was %d), updated_at %s (was %s)",
			got.PasswordHash, got.Revision, u.Revision, got.UpdatedAt, u.UpdatedAt)
	}

	changed, err := s.UpdateUser(ctx, u.ID, got.Revision, UserChanges{PasswordHash: ptr("hash-of-a-new-password")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UpgradePasswordHash(ctx, u.ID, u.Revision, "upgrade-of-the-old-password"); !errors.Is(err, ErrStale) {
		t.Errorf("upgrade at an old revision: %v, want ErrStale", err)
	}
	if got, _ := s.GetUser(ctx, u.ID); got.PasswordHash != changed.PasswordHash {
		t.Errorf("the new password's hash was replaced: %q", got.PasswordHash)
	}
}

func TestUpdateUser(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	mustCreateUser(t, s, "Admin", "admin@example.com", RoleAdmin)
	tests := []struct {
		name   string
		change UserChanges
		check  func(t *testing.T, u *User, raw bson.M)
	}{
		{"name", UserChanges{Name: ptr("New Name")}, func(t *testing.T, u *User, raw bson.M) {
			if u.Name != "New Name" || u.Email != "upd@example.com" || u.Company != "Acme" {
				t.Errorf("got %+v", u)
			}
		}},
		{"email", UserChanges{Email: ptr("moved@example.com")}, func(t *testing.T, u *User, raw bson.M) {
			if u.Email != "moved@example.com" || u.Name != "Up Date" {
				t.Errorf("got %+v", u)
			}
		}},
		{"company", UserChanges{Company: ptr("Initech")}, func(t *testing.T, u *User, raw bson.M) {
			if u.Company != "Initech" {
				t.Errorf("company %q", u.Company)
			}
		}},
		{"clear company", UserChanges{Company: ptr("")}, func(t *testing.T, u *User, raw bson.M) {
			if _, ok := raw["company"]; ok || u.Company != "" {
				t.Errorf("company still stored: %v / %q", raw["company"], u.Company)
			}
		}},
		{"password", UserChanges{PasswordHash: ptr("new-hash")}, func(t *testing.T, u *User, raw bson.M) {
			if u.PasswordHash != "new-hash" || raw["password"] != "new-hash" {
				t.Errorf("password %q / %v", u.PasswordHash, raw["password"])
			}
		}},
		{"promote", UserChanges{Role: ptr(RoleAdmin)}, func(t *testing.T, u *User, raw bson.M) {
			if u.Role != RoleAdmin {
				t.Errorf("role %q", u.Role)
			}
		}},
		{"deactivate a member", UserChanges{Status: ptr(StatusInactive)}, func(t *testing.T, u *User, raw bson.M) {
			if u.Status != StatusInactive {
				t.Errorf("status %q", u.Status)
			}
		}},
		{"nothing", UserChanges{}, func(t *testing.T, u *User, raw bson.M) {
			if u.Name != "Up Date" || u.Email != "upd@example.com" || u.Company != "Acme" || u.Role != RoleMember {
				t.Errorf("got %+v", u)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// One user per subtest, removed at its end (the checks expect its email).
			ctx := t.Context()
			u := &User{Name: "Up Date", Email: "upd@example.com", PasswordHash: "old-hash", Company: "Acme", Status: StatusActive, Role: RoleMember}
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			defer s.users.DeleteOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: u.ID}})
			pause()
			got, err := s.UpdateUser(ctx, u.ID, 1, tc.change)
			if err != nil {
				t.Fatalf("UpdateUser: %v", err)
			}
			if got.Revision != 2 {
				t.Errorf("revision %d after one update, want 2", got.Revision)
			}
			if !got.CreatedAt.Equal(u.CreatedAt) || !got.UpdatedAt.After(u.UpdatedAt) {
				t.Errorf("created_at %v→%v (want unchanged), updated_at %v→%v (want later)", u.CreatedAt, got.CreatedAt, u.UpdatedAt, got.UpdatedAt)
			}
			tc.check(t, got, rawDoc(t, s.users.Collection, u.ID))
			// What UpdateUser returned is what is stored.
			again, err := s.GetUser(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", again) != fmt.Sprintf("%+v", got) {
				t.Errorf("GetUser after update:\n %+v\nUpdateUser returned\n %+v", again, got)
			}
		})
	}
}

func TestUserConditionalWrites(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	mustCreateUser(t, s, "Admin", "admin@example.com", RoleAdmin)
	u := mustCreateUser(t, s, "Rev", "rev@example.com", RoleMember)

	// Revisions go up by one per write.
	for want := int64(2); want <= 4; want++ {
		got, err := s.UpdateUser(ctx, u.ID, want-1, UserChanges{Name: ptr(fmt.Sprintf("Rev %d", want))})
		if err != nil {
			t.Fatalf("update at revision %d: %v", want-1, err)
		}
		if got.Revision != want {
			t.Fatalf("revision %d, want %d", got.Revision, want)
		}
	}
	for _, rev := range []int64{0, 1, 3, 5} {
		if _, err := s.UpdateUser(ctx, u.ID, rev, UserChanges{Name: ptr("stale")}); !errors.Is(err, ErrStale) {
			t.Errorf("UpdateUser at revision %d (current 4) = %v, want ErrStale", rev, err)
		}
		if err := s.DeleteUser(ctx, u.ID, rev); !errors.Is(err, ErrStale) {
			t.Errorf("DeleteUser at revision %d (current 4) = %v, want ErrStale", rev, err)
		}
	}
	if got, _ := s.GetUser(ctx, u.ID); got == nil || got.Name != "Rev 4" || got.Revision != 4 {
		t.Fatalf("after stale writes: %+v, want Rev 4 at revision 4", got)
	}

	unknown := bson.NewObjectID()
	if _, err := s.UpdateUser(ctx, unknown, 1, UserChanges{Name: ptr("x")}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateUser(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateUser(ctx, unknown, 1, UserChanges{Role: ptr(RoleMember)}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateUser(unknown, role) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser(ctx, unknown, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteUser(unknown) = %v, want ErrNotFound", err)
	}

	if err := s.DeleteUser(ctx, u.ID, 4); err != nil {
		t.Fatalf("DeleteUser at the current revision: %v", err)
	}
	if _, err := s.GetUser(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetUser after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser(ctx, u.ID, 4); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteUser = %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateUser(ctx, u.ID, 4, UserChanges{Name: ptr("ghost")}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateUser after delete = %v, want ErrNotFound", err)
	}
}

func TestUpdateUserRace(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	u := mustCreateUser(t, s, "Racer", "racer@example.com", RoleMember)
	const n = 16
	errs := runConcurrently(n, func(i int) error {
		_, err := s.UpdateUser(t.Context(), u.ID, 1, UserChanges{Name: ptr(fmt.Sprintf("winner %d", i))})
		return err
	})
	ok, stale, other := tallyErrors(errs, ErrStale)
	if ok != 1 || stale != n-1 || len(other) != 0 {
		t.Fatalf("%d updates succeeded, %d stale, others %v; want exactly 1 success and %d ErrStale", ok, stale, other, n-1)
	}
	winner := -1
	for i, err := range errs {
		if err == nil {
			winner = i
		}
	}
	got, err := s.GetUser(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != 2 || got.Name != fmt.Sprintf("winner %d", winner) {
		t.Errorf("stored %q at revision %d, want %q at revision 2", got.Name, got.Revision, fmt.Sprintf("winner %d", winner))
	}
}

func TestDeleteUserReferenced(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	mustCreateUser(t, s, "Admin", "admin@example.com", RoleAdmin)
	owner := mustCreateUser(t, s, "Owner", "owner@example.com", RoleMember)
	actor := mustCreateUser(t, s, "Actor", "actor@example.com", RoleMember)
	free := mustCreateUser(t, s, "Free", "free@example.com", RoleMember)
	c := mustCreateCustomer(t, s, &Customer{Name: "Cust", Email: "cust@example.com", OwnerID: &owner.ID})
	mustCreateInteraction(t, s, actor.ID, c.ID, "Call", "Open", nil)

	tests := []struct {
		user   *User
		wantBy string
	}{
		{owner, "customers"},
		{actor, "interactions"},
	}
	for _, tc := range tests {
		err := s.DeleteUser(ctx, tc.user.ID, tc.user.Revision)
		var re *ReferencedError
		if !errors.As(err, &re) || re.By != tc.wantBy || !errors.Is(err, ErrReferenced) {
			t.Errorf("DeleteUser(%s) = %v, want *ReferencedError by %q", tc.user.Name, err, tc.wantBy)
			continue
		}
		got, err := s.GetUser(ctx, tc.user.ID)
		if err != nil {
			t.Fatalf("%s after the refused delete: %v", tc.user.Name, err)
		}
		if got.DeletingAt != nil || got.Revision != tc.user.Revision {
			t.Errorf("%s after the refused delete: deleting_at %v, revision %d; want no mark, revision %d", tc.user.Name, got.DeletingAt, got.Revision, tc.user.Revision)
		}
		// The mark was taken back: the user can still be referenced.
		if err := s.CreateCustomer(ctx, &Customer{Name: "More", Email: "more-" + tc.user.Email, Status: StatusActive, OwnerID: &tc.user.ID}); err != nil {
			t.Errorf("CreateCustomer owned by %s after the refused delete: %v", tc.user.Name, err)
		}
	}

	if err := s.DeleteUser(ctx, free.ID, free.Revision); err != nil {
		t.Errorf("DeleteUser of a user nothing refers to: %v", err)
	}
	if _, err := s.GetUser(ctx, free.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted user: %v", err)
	}
}

func TestLastAdmin(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	admin := mustCreateUser(t, s, "Admin", "admin@example.com", RoleAdmin)
	member := mustCreateUser(t, s, "Member", "member@example.com", RoleMember)

	lastAdminChanges := map[string]func() error{
		"delete": func() error { return s.DeleteUser(ctx, admin.ID, admin.Revision) },
		"demote": func() error {
			_, err := s.UpdateUser(ctx, admin.ID, admin.Revision, UserChanges{Role: ptr(RoleMember)})
			return err
		},
		"deactivate": func() error {
			_, err := s.UpdateUser(ctx, admin.ID, admin.Revision, UserChanges{Status: ptr(StatusInactive)})
			return err
		},
	}
	expectLastAdmin := func(when string) {
		t.Helper()
		for name, f := range lastAdminChanges {
			if err := f(); !errors.Is(err, ErrLastAdmin) {
				t.Errorf("%s the only active admin %s = %v, want ErrLastAdmin", name, when, err)
			}
		}
		got, err := s.GetUser(ctx, admin.ID)
		if err != nil || !got.IsActiveAdmin() || got.Revision != admin.Revision {
			t.Fatalf("the admin after refused changes %s: %+v, %v", when, got, err)
		}
	}
	expectLastAdmin("alone")

	// Writes that keep the admin an active admin are fine.
	upd, err := s.UpdateUser(ctx, admin.ID, admin.Revision, UserChanges{Role: ptr(RoleAdmin), Status: ptr(StatusActive), Name: ptr("Admin 2")})
	if err != nil {
		t.Fatalf("re-affirming the last admin's role: %v", err)
	}
	admin = upd
	// Members may be deactivated and deleted with one admin around.
	if _, err := s.UpdateUser(ctx, member.ID, member.Revision, UserChanges{Status: ptr(StatusInactive)}); err != nil {
		t.Fatalf("deactivating a member: %v", err)
	}

	// An inactive admin does not count as another admin.
	inactive := mustCreateUser(t, s, "Inactive", "inactive@example.com", RoleAdmin)
	if _, err := s.UpdateUser(ctx, inactive.ID, 1, UserChanges{Status: ptr(StatusInactive)}); err != nil {
		t.Fatalf("deactivating the second admin while the first is active: %v", err)
	}
	expectLastAdmin("with an inactive second admin")

	// With a second active admin, each of the changes goes through.
	second := mustCreateUser(t, s, "Second", "second@example.com", RoleAdmin)
	restore := func() {
		t.Helper()
		rawSet(t, s.users.Collection, admin.ID, bson.D{{Key: "role", Value: "admin"}, {Key: "status", Value: "active"}})
		var err error
		if admin, err = s.GetUser(ctx, admin.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"demote", "deactivate", "delete"} {
		if err := lastAdminChanges[name](); err != nil {
			t.Errorf("%s with a second active admin: %v", name, err)
		}
		if name != "delete" {
			restore()
		}
	}
	if _, err := s.GetUser(ctx, admin.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("admin still there after delete: %v", err)
	}
	// Now Second is the only active admin.
	if err := s.DeleteUser(ctx, second.ID, second.Revision); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("deleting the remaining admin = %v, want ErrLastAdmin", err)
	}
}

// An admin who is not active is no admin to keep: with no active admin at
// all (an old database, say), they can still be demoted or deleted.
func TestLastAdminNotActive(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	off := &User{Name: "Off", Email: "off@example.com", Status: StatusInactive, Role: RoleAdmin}
	if err := s.CreateUser(ctx, off); err != nil {
		t.Fatal(err)
	}
	mustCreateUser(t, s, "Member", "member@example.com", RoleMember)
	if _, err := s.UpdateUser(ctx, off.ID, 1, UserChanges{Role: ptr(RoleMember)}); err != nil {
		t.Errorf("demoting an inactive admin: %v", err)
	}
	if err := s.DeleteUser(ctx, off.ID, 2); err != nil {
		t.Errorf("deleting an inactive (now member) user: %v", err)
	}
	off2 := &User{Name: "Off 2", Email: "off2@example.com", Status: StatusInactive, Role: RoleAdmin}
	if err := s.CreateUser(ctx, off2); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, off2.ID, 1); err != nil {
		t.Errorf("deleting an inactive admin with no active admin around: %v", err)
	}
}

// Two admins demoting each other at the same time: one must stay.
func TestLastAdminConcurrentDemotions(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	a := mustCreateUser(t, s, "A", "a@example.com", RoleAdmin)
	b := mustCreateUser(t, s, "B", "b@example.com", RoleAdmin)
	admins := []*User{a, b}
	errs := runConcurrently(2, func(i int) error {
		_, err := s.UpdateUser(t.Context(), admins[i].ID, 1, UserChanges{Role: ptr(RoleMember)})
		return err
	})
	ok, last, other := tallyErrors(errs, ErrLastAdmin)
	if ok != 1 || last != 1 || len(other) != 0 {
		t.Fatalf("concurrent demotions: %d succeeded, %d ErrLastAdmin, others %v; want 1 and 1", ok, last, other)
	}
	if n := countDocs(t, s.users.Collection, bson.D{{Key: "role", Value: "admin"}}); n != 1 {
		t.Errorf("%d admins left, want 1", n)
	}
}

// A legacy admin ("Admin", no status) counts as an active admin.
func TestLastAdminLegacy(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	admin := mustCreateUser(t, s, "Admin", "admin@example.com", RoleAdmin)
	legacyID := bson.NewObjectID()
	rawInsert(t, s.users.Collection, bson.D{{Key: "_id", Value: legacyID}, {Key: "name", Value: "Old Admin"}, {Key: "email", Value: "old@example.com"}, {Key: "password", Value: "$2a$10$x"}, {Key: "role", Value: "Admin"}})
	if _, err := s.UpdateUser(ctx, admin.ID, 1, UserChanges{Role: ptr(RoleMember)}); err != nil {
		t.Fatalf("demoting the new admin while a legacy admin exists: %v", err)
	}
	if err := s.DeleteUser(ctx, legacyID, 0); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("deleting the legacy admin, now the last = %v, want ErrLastAdmin", err)
	}
	if _, err := s.UpdateUser(ctx, legacyID, 0, UserChanges{Role: ptr(RoleMember)}); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("demoting the legacy admin, now the last = %v, want ErrLastAdmin", err)
	}
}

func TestListUsersFilters(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	add := func(name, email, company, status, role string) {
		t.Helper()
		u := &User{Name: name, Email: email, Company: company, Status: status, Role: role}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	add("Alice Admin", "alice@example.com", "Acme", StatusActive, RoleAdmin)
	add("Bob Member", "bob@example.com", "Globex", StatusActive, RoleMember)
	add("Carol Off", "carol@acme.test", "", StatusInactive, RoleMember)
	add("Dan Dotstar", "dan@example.com", "Dot.*Star", StatusActive, RoleMember)
	add("Eve (Paren)", "eve@example.com", "Umbrella", StatusInactive, RoleAdmin)
	// The original CRM's users: no status, "Admin"/"User" roles, or no role.
	for _, d := range []bson.D{
		{{Key: "name", Value: "Legacy Admin"}, {Key: "email", Value: "ladmin@example.com"}, {Key: "role", Value: "Admin"}},
		{{Key: "name", Value: "Legacy User"}, {Key: "email", Value: "luser@example.com"}, {Key: "role", Value: "User"}, {Key: "company", Value: "ACME Corp"}},
		{{Key: "name", Value: "Legacy Nobody"}, {Key: "email", Value: "lnobody@example.com"}},
	} {
		rawInsert(t, s.users.Collection, append(bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "password", Value: "x"}}, d...))
	}
	if err := s.fillNameKeys(t.Context()); err != nil { // as the janitor does when the store opens
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		filter UserFilter
		want   []string
	}{
		{"all", UserFilter{}, []string{"Alice Admin", "Bob Member", "Carol Off", "Dan Dotstar", "Eve (Paren)", "Legacy Admin", "Legacy Nobody", "Legacy User"}},
		{"active", UserFilter{Status: StatusActive}, []string{"Alice Admin", "Bob Member", "Dan Dotstar", "Legacy Admin", "Legacy Nobody", "Legacy User"}},
		{"inactive", UserFilter{Status: StatusInactive}, []string{"Carol Off", "Eve (Paren)"}},
		{"admin", UserFilter{Role: RoleAdmin}, []string{"Alice Admin", "Eve (Paren)", "Legacy Admin"}},
		{"member", UserFilter{Role: RoleMember}, []string{"Bob Member", "Carol Off", "Dan Dotstar", "Legacy Nobody", "Legacy User"}},
		{"active admin", UserFilter{Status: StatusActive, Role: RoleAdmin}, []string{"Alice Admin", "Legacy Admin"}},
		{"inactive member", UserFilter{Status: StatusInactive, Role: RoleMember}, []string{"Carol Off"}},
		{"search name, any case", UserFilter{Search: "aLiCe"}, []string{"Alice Admin"}},
		{"search email", UserFilter{Search: "@acme.test"}, []string{"Carol Off"}},
		{"search company, any case", UserFilter{Search: "acme"}, []string{"Alice Admin", "Carol Off", "Legacy User"}},
		{"search company", UserFilter{Search: "GLOBEX"}, []string{"Bob Member"}},
		{"search with a space", UserFilter{Search: "b member"}, []string{"Bob Member"}},
		{"search with two spaces", UserFilter{Search: "b  member"}, nil},
		{"search .* is literal", UserFilter{Search: ".*"}, []string{"Dan Dotstar"}},
		{"search ( is literal", UserFilter{Search: "("}, []string{"Eve (Paren)"}},
		{"search regex syntax is literal", UserFilter{Search: "a.i"}, nil},
		{"search with status", UserFilter{Search: "legacy", Status: StatusActive, Role: RoleMember}, []string{"Legacy Nobody", "Legacy User"}},
		{"search no match", UserFilter{Search: "zzz"}, nil},
		{"search a name without its accents", UserFilter{Search: "ålîce"}, []string{"Alice Admin"}},
		{"search of accents alone matches no name", UserFilter{Search: "\u0301"}, nil},
		{"email is exact", UserFilter{Email: "bob@example.com"}, []string{"Bob Member"}},
		{"email is not a substring", UserFilter{Email: "example.com"}, nil},
		{"email of the original CRM", UserFilter{Email: "luser@example.com", Role: RoleMember}, []string{"Legacy User"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.ListUsers(ctx, tc.filter, ListOptions{Sort: Sort{Field: "name"}, Limit: 50, Count: true})
			if err != nil {
				t.Fatalf("ListUsers: %v", err)
			}
			var got []string
			for _, u := range page.Items {
				got = append(got, u.Name)
				// Every returned user is normalised.
				if (u.Role != RoleAdmin && u.Role != RoleMember) || (u.Status != StatusActive && u.Status != StatusInactive) || u.CreatedAt.IsZero() {
					t.Errorf("user %q not normalised: role %q status %q created %v", u.Name, u.Role, u.Status, u.CreatedAt)
				}
				if tc.filter.Role != "" && u.Role != tc.filter.Role {
					t.Errorf("user %q has role %q in a list filtered by %q", u.Name, u.Role, tc.filter.Role)
				}
				if tc.filter.Status != "" && u.Status != tc.filter.Status {
					t.Errorf("user %q has status %q in a list filtered by %q", u.Name, u.Status, tc.filter.Status)
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if page.Total == nil || *page.Total != int64(len(tc.want)) {
				t.Errorf("Total = %v, want %d", page.Total, len(tc.want))
			}
			if page.Next != nil {
				t.Errorf("Next = %+v on the only page", page.Next)
			}
		})
	}
}

// Users as the original CRM stored them: no timestamps or revision, extra
// fields, "Admin"/"User" roles, no status.
func TestLegacyUsers(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	mustCreateUser(t, s, "Current Admin", "admin@example.com", RoleAdmin)
	created := time.Date(2019, 3, 1, 9, 30, 0, 0, time.UTC)
	adminID := bson.NewObjectIDFromTimestamp(created)
	userID := bson.NewObjectIDFromTimestamp(created.Add(time.Hour))
	rawInsert(t, s.users.Collection, bson.D{
		{Key: "_id", Value: adminID}, {Key: "name", Value: "Old Admin"}, {Key: "email", Value: "oldadmin@example.com"},
		{Key: "password", Value: "$2a$10$abcdefghijklmnopqrstuv"}, {Key: "company", Value: "Old Co"}, {Key: "role", Value: "Admin"},
		{Key: "contact_info", Value: bson.D{{Key: "phone", Value: "+1 555 0100"}, {Key: "address", Value: "1 Main St"}}},
		{Key: "notes", Value: "founder"},
	})
	rawInsert(t, s.users.Collection, bson.D{
		{Key: "_id", Value: userID}, {Key: "name", Value: "Old User"}, {Key: "email", Value: "olduser@example.com"},
		{Key: "password", Value: "$2a$10$zyxwvutsrqponmlkjihgfe"}, {Key: "role", Value: "User"},
		{Key: "contact_info", Value: "555-0101"}, {Key: "notes", Value: bson.A{"a", "b"}},
	})

	check := func(t *testing.T, u *User, wantID bson.ObjectID, wantRole string, wantCreated time.Time) {
		t.Helper()
		if u.ID != wantID || u.Role != wantRole || u.Status != StatusActive || u.Revision != 0 {
			t.Errorf("legacy user %+v: want id %v, role %q, active, revision 0", u, wantID, wantRole)
		}
		if !u.CreatedAt.Equal(wantCreated) || !u.UpdatedAt.Equal(wantCreated) {
			t.Errorf("legacy user %v: created_at %v, updated_at %v; want both %v (from the ObjectID)", u.ID, u.CreatedAt, u.UpdatedAt, wantCreated)
		}
	}

	a, err := s.GetUser(ctx, adminID)
	if err != nil {
		t.Fatalf("GetUser(legacy admin): %v", err)
	}
	check(t, a, adminID, RoleAdmin, created)
	if a.PasswordHash != "$2a$10$abcdefghijklmnopqrstuv" || a.Company != "Old Co" {
		t.Errorf("legacy admin's hash/company: %q %q", a.PasswordHash, a.Company)
	}
	u, err := s.GetUserByEmail(ctx, "olduser@example.com")
	if err != nil {
		t.Fatalf("GetUserByEmail(legacy user): %v", err)
	}
	check(t, u, userID, RoleMember, created.Add(time.Hour))

	page, err := s.ListUsers(ctx, UserFilter{}, ListOptions{Sort: Sort{Field: "created_at"}, Limit: 10})
	if err != nil {
		t.Fatalf("ListUsers with legacy users: %v", err)
	}
	if len(page.Items) != 3 {
		t.Fatalf("ListUsers returned %d users, want 3", len(page.Items))
	}
	for _, it := range page.Items {
		switch it.ID {
		case adminID:
			check(t, &it, adminID, RoleAdmin, created)
		case userID:
			check(t, &it, userID, RoleMember, created.Add(time.Hour))
		}
	}

	// Update at revision 0 (the legacy document has none); then it has one.
	if _, err := s.UpdateUser(ctx, userID, 1, UserChanges{Name: ptr("x")}); !errors.Is(err, ErrStale) {
		t.Errorf("UpdateUser(legacy) at revision 1 = %v, want ErrStale", err)
	}
	pause()
	upd, err := s.UpdateUser(ctx, userID, 0, UserChanges{Name: ptr("Old User Renamed"), Role: ptr(RoleAdmin)})
	if err != nil {
		t.Fatalf("UpdateUser(legacy) at revision 0: %v", err)
	}
	if upd.Name != "Old User Renamed" || upd.Revision != 1 || upd.Role != RoleAdmin || !upd.CreatedAt.Equal(created.Add(time.Hour)) || !upd.UpdatedAt.After(created.Add(time.Hour)) {
		t.Errorf("updated legacy user: %+v", upd)
	}
	if _, err := s.UpdateUser(ctx, userID, 0, UserChanges{Name: ptr("again")}); !errors.Is(err, ErrStale) {
		t.Errorf("second update at revision 0 = %v, want ErrStale", err)
	}
	raw := rawDoc(t, s.users.Collection, userID)
	if raw["contact_info"] != "555-0101" {
		t.Errorf("the update dropped the legacy contact_info: %v", raw["contact_info"])
	}

	// Delete at revision 0.
	if err := s.DeleteUser(ctx, adminID, 1); !errors.Is(err, ErrStale) {
		t.Errorf("DeleteUser(legacy) at revision 1 = %v, want ErrStale", err)
	}
	if err := s.DeleteUser(ctx, adminID, 0); err != nil {
		t.Fatalf("DeleteUser(legacy) at revision 0: %v", err)
	}
	if _, err := s.GetUser(ctx, adminID); !errors.Is(err, ErrNotFound) {
		t.Errorf("legacy admin after delete: %v", err)
	}
}
