package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// User field names beyond the shared ones. "password" holds the hash, as in the
// original CRM.
const (
	userFieldPassword     = "password"
	userFieldRole         = "role"
	userFieldTokenVersion = "token_version"
)

// Roles and statuses as stored.
const (
	RoleAdmin      = "admin"
	RoleMember     = "member"
	StatusActive   = "active"
	StatusInactive = "inactive"

	// The original CRM's role names, still found in old databases.
	legacyRoleAdmin = "Admin"
	legacyRoleUser  = "User"
)

var (
	// ErrLastAdmin: the change would leave no active admin.
	ErrLastAdmin = errors.New("store: would remove the last active admin")
	// ErrUsersExist: CreateFirstUser was called when users exist already.
	ErrUsersExist = errors.New("store: users exist already")
)

// User is a staff member who signs in. PasswordHash never leaves the api
// package's login and password checks.
type User struct {
	ID           bson.ObjectID `bson:"_id"`
	Name         string        `bson:"name"`
	NameKey      string        `bson:"name_key"` // set by the store: see sortKey
	Email        string        `bson:"email"`
	PasswordHash string        `bson:"password"`
	Company      string        `bson:"company,omitempty"`
	Status       string        `bson:"status"`
	Role         string        `bson:"role"`
	CreatedAt    time.Time     `bson:"created_at"`
	UpdatedAt    time.Time     `bson:"updated_at"`
	Revision     int64         `bson:"revision"`
	DeletingAt   *time.Time    `bson:"deleting_at,omitempty"`
	// TokenVersion is the version access tokens must carry: a new password
	// or a deactivation moves it on, which ends every token issued before.
	TokenVersion int64 `bson:"token_version,omitempty"`
}

// normalize fills what documents written by the original CRM lack or spell
// differently, so that every User the store returns is complete.
func (u *User) normalize() {
	fillTimestamps(u.ID, &u.CreatedAt, &u.UpdatedAt)
	switch u.Role {
	case RoleAdmin, legacyRoleAdmin:
		u.Role = RoleAdmin
	default:
		u.Role = RoleMember
	}
	if u.Status != StatusInactive {
		u.Status = StatusActive
	}
}

// IsActiveAdmin reports whether u may administer the CRM.
func (u *User) IsActiveAdmin() bool { return u.Role == RoleAdmin && u.Status == StatusActive }

// UserChanges lists the fields to change; nil leaves a field as it is, and an
// empty Company removes it.
type UserChanges struct {
	Name, Email, Company, Role, Status, PasswordHash *string
	TokenVersion                                     *int64
}

// Effective returns the changes that would alter u (see dropSame). A new
// password hash and a new token version always do.
func (ch UserChanges) Effective(u *User) UserChanges {
	dropSame(&ch.Name, u.Name)
	dropSame(&ch.Email, u.Email)
	dropSame(&ch.Company, u.Company)
	dropSame(&ch.Role, u.Role)
	dropSame(&ch.Status, u.Status)
	return ch
}

// None reports whether ch changes nothing.
func (ch UserChanges) None() bool { return ch == UserChanges{} }

// UserFilter selects users for List; zero fields do not filter.
type UserFilter struct {
	Status, Role string
	Email        string // exact, as stored (lower-cased)
	Search       string // case-insensitive substring of name, email or company
	UpdatedSince *time.Time
}

// CreateUser stores a new user, filling ID, timestamps and revision. The email
// must already be lower-cased; a taken email is ErrDuplicate.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	u.ID = bson.NewObjectID()
	u.NameKey = sortKey(u.Name)
	u.CreatedAt = now()
	u.UpdatedAt = u.CreatedAt
	u.Revision = 1
	_, err := s.users.InsertOne(ctx, u)
	return translate(err)
}

// CreateFirstUser stores u as the first admin, but only if no user exists yet:
// of several concurrent callers exactly one succeeds, and the others get
// ErrUsersExist. The winner is decided by a unique marker document, which works
// without transactions, across processes, on MongoDB and on the embedded engine.
func (s *Store) CreateFirstUser(ctx context.Context, u *User) error {
	exists, err := s.AnyUser(ctx)
	if err != nil {
		return err
	}
	if exists {
		return ErrUsersExist
	}
	// The marker outlives the users only if they were deleted by hand; then,
	// after a minute, bootstrapping is possible again.
	if err := s.claimMarker(ctx, "bootstrap", time.Minute); err != nil {
		if errors.Is(err, ErrDuplicate) {
			return ErrUsersExist
		}
		return err
	}
	u.Role, u.Status = RoleAdmin, StatusActive
	if err := s.CreateUser(ctx, u); err != nil {
		// Let a later attempt bootstrap instead.
		_ = s.releaseMarker(context.WithoutCancel(ctx), "bootstrap")
		return err
	}
	return nil
}

// AnyUser reports whether at least one user exists.
func (s *Store) AnyUser(ctx context.Context) (bool, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	err := s.users.FindOne(ctx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: fieldID, Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, translate(err)
}

// GetUser returns the user with id, or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id bson.ObjectID) (*User, error) {
	var u User
	if err := s.getByID(ctx, s.users, id, &u); err != nil {
		return nil, err
	}
	u.normalize()
	return &u, nil
}

// GetUserByEmail returns the user whose email is email (lower-cased), or ErrNotFound.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*User, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	var u User
	if err := s.users.FindOne(ctx, bson.D{{Key: fieldEmail, Value: email}}).Decode(&u); err != nil {
		return nil, translate(err)
	}
	u.normalize()
	return &u, nil
}

// ListUsers returns one page of users.
func (s *Store) ListUsers(ctx context.Context, f UserFilter, opts ListOptions) (Page[User], error) {
	var filter bson.D
	switch f.Status {
	case StatusActive:
		// The original CRM did not store a status; such users are active.
		filter = append(filter, bson.E{Key: fieldStatus, Value: bson.D{{Key: "$in", Value: bson.A{StatusActive, nil}}}})
	case StatusInactive:
		filter = append(filter, bson.E{Key: fieldStatus, Value: StatusInactive})
	}
	switch f.Role {
	case RoleAdmin:
		filter = append(filter, bson.E{Key: userFieldRole, Value: bson.D{{Key: "$in", Value: bson.A{RoleAdmin, legacyRoleAdmin}}}})
	case RoleMember:
		filter = append(filter, bson.E{Key: userFieldRole, Value: bson.D{{Key: "$nin", Value: bson.A{RoleAdmin, legacyRoleAdmin}}}})
	}
	if f.Email != "" {
		filter = append(filter, bson.E{Key: fieldEmail, Value: f.Email})
	}
	if f.Search != "" {
		filter = append(filter, searchCondition(f.Search, fieldName, fieldEmail, fieldCompany))
	}
	if f.UpdatedSince != nil {
		filter = append(filter, updatedSince(*f.UpdatedSince))
	}
	return list(ctx, s, s.users, filter, opts, (*User).normalize)
}

// UpdateUser applies changes to the user at revision rev and returns the user
// as stored. ErrStale means it is no longer at rev; ErrLastAdmin that the change
// would leave no active admin; ErrDuplicate that the new email is taken.
func (s *Store) UpdateUser(ctx context.Context, id bson.ObjectID, rev int64, c UserChanges) (*User, error) {
	demotes := (c.Role != nil && *c.Role != RoleAdmin) || (c.Status != nil && *c.Status != StatusActive)
	if demotes {
		// Within this process, one admin change at a time; the check after the
		// write covers other processes sharing the database.
		s.adminMu.Lock()
		defer s.adminMu.Unlock()
		if err := s.keepAnotherAdmin(ctx, id); err != nil {
			return nil, err
		}
	}
	var ch changes
	ch.text(fieldName, c.Name)
	if c.Name != nil {
		ch.value(fieldNameKey, sortKey(*c.Name))
	}
	ch.text(fieldEmail, c.Email)
	ch.text(fieldCompany, c.Company)
	ch.text(userFieldRole, c.Role)
	ch.text(fieldStatus, c.Status)
	ch.text(userFieldPassword, c.PasswordHash)
	if c.TokenVersion != nil {
		ch.value(userFieldTokenVersion, *c.TokenVersion)
	}

	if !demotes {
		var u User
		if err := s.updateAtRevision(ctx, s.users, id, rev, ch, &u); err != nil {
			return nil, err
		}
		u.normalize()
		return &u, nil
	}
	var before bson.Raw
	if _, err := s.update(ctx, s.users, id, rev, ch, options.Before, &before); err != nil {
		return nil, err
	}
	var was User
	if err := bson.Unmarshal(before, &was); err != nil {
		return nil, err
	}
	was.normalize()
	if was.IsActiveAdmin() {
		// Two admins demoting each other at once from two processes each see
		// the other as the remaining admin; afterwards, both see none, and both
		// put their change back.
		if err := s.anyActiveAdmin(ctx); err != nil {
			if undoErr := s.restore(ctx, s.users, id, before, []string{userFieldRole, fieldStatus}); undoErr != nil {
				return nil, undoErr
			}
			return nil, err
		}
	}
	return s.GetUser(ctx, id)
}

// UpgradePasswordHash replaces the password hash of the user at revision rev
// by newHash, a hash of the same password in a newer form, without changing
// the revision or updated_at: the user did not change, and a sign-in must not
// look like an edit to a sync job or fail an admin's If-Match. ErrStale: the
// user changed since (a new password, perhaps, whose hash must stay).
func (s *Store) UpgradePasswordHash(ctx context.Context, id bson.ObjectID, rev int64, newHash string) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	defer s.lockDoc(id)()
	filter, _, release, err := s.atRevision(ctx, s.users, id, rev)
	if err != nil {
		return err
	}
	defer release()
	res, err := s.users.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: userFieldPassword, Value: newHash}}}})
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount == 0 {
		return ErrStale
	}
	return nil
}

// DeleteUser deletes the user at revision rev. A user who still owns customers
// or interactions is not deleted (ErrReferenced), nor is the last active admin
// (ErrLastAdmin).
func (s *Store) DeleteUser(ctx context.Context, id bson.ObjectID, rev int64) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	// The user is marked as being deleted before the admin check, and marked
	// admins do not count: two admins deleting each other from two processes
	// both see no other admin, and both are refused.
	return s.deleteReferenced(ctx, s.users, id, rev, []reference{
		{s.customers, customerFieldOwnerID},
		{s.interactions, interactionFieldUserID},
	}, false, nil, func(ctx context.Context) error { return s.keepAnotherAdmin(ctx, id) })
}

// activeAdmins matches the users who administer the CRM: admins (in either
// spelling), active (or without a status, as the original CRM wrote them), and
// not being deleted.
func activeAdmins() bson.D {
	return bson.D{
		{Key: userFieldRole, Value: bson.D{{Key: "$in", Value: bson.A{RoleAdmin, legacyRoleAdmin}}}},
		{Key: fieldStatus, Value: bson.D{{Key: "$in", Value: bson.A{StatusActive, nil}}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: fieldDeletingAt, Value: bson.D{{Key: "$exists", Value: false}}}},
			bson.D{{Key: fieldDeletingAt, Value: bson.D{{Key: "$lt", Value: now().Add(-deletionMarkTTL)}}}},
		}},
	}
}

// keepAnotherAdmin fails with ErrLastAdmin unless an active admin other than id
// exists (or id is no active admin itself, in which case nothing is lost).
func (s *Store) keepAnotherAdmin(ctx context.Context, id bson.ObjectID) error {
	u, err := s.GetUser(ctx, id)
	if err != nil {
		return err
	}
	if !u.IsActiveAdmin() {
		return nil
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	found, err := exists(ctx, s.users, append(bson.D{{Key: fieldID, Value: bson.D{{Key: "$ne", Value: id}}}}, activeAdmins()...))
	if err == nil && !found {
		return ErrLastAdmin
	}
	return err
}

// anyActiveAdmin fails with ErrLastAdmin if no active admin exists.
func (s *Store) anyActiveAdmin(ctx context.Context) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	found, err := exists(ctx, s.users, activeAdmins())
	if err == nil && !found {
		return ErrLastAdmin
	}
	return err
}
