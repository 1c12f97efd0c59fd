package api

import (
	"context"
	"errors"
	"strings"

	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/store"
)

func userOut(u *store.User) gen.User {
	return gen.User{
		Id:        u.ID.Hex(),
		Name:      u.Name,
		Email:     u.Email,
		Company:   optional(u.Company),
		Status:    gen.UserStatus(u.Status),
		Role:      gen.UserRole(u.Role),
		CreatedAt: u.CreatedAt,
		UpdatedAt: u.UpdatedAt,
	}
}

// userJSON is u as encoding/json writes it, written faster (see json.go).
func userJSON(u gen.User) ([]byte, error) {
	o := newJSONObject()
	o.string("id", u.Id)
	o.string("name", u.Name)
	o.string("email", u.Email)
	o.optionalString("company", u.Company)
	o.string("status", string(u.Status))
	o.string("role", string(u.Role))
	o.time("created_at", u.CreatedAt)
	o.time("updated_at", u.UpdatedAt)
	return o.end()
}

// normalizeEmail is how emails are stored and compared: trimmed, composed (see
// nfc), with ASCII letters lower-cased, so that uniqueness ignores their case
// on any database. Only ASCII's: Unicode's lower case of "İ" is "i", which
// would turn an address into another, real one.
func normalizeEmail(email string) string {
	return strings.Map(asciiLower, nfc(strings.TrimSpace(email)))
}

func asciiLower(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + ('a' - 'A')
	}
	return r
}

// CreateUser creates a user. Without a token it bootstraps the first admin,
// which is only possible while no user exists.
func (h *Handler) CreateUser(ctx context.Context, req gen.CreateUserRequestObject) (gen.CreateUserResponseObject, error) {
	b := req.Body
	p := PrincipalFrom(ctx)
	if p != nil {
		if err := requireAdmin(p, "create users"); err != nil {
			return nil, err
		}
	} else if exists, err := h.store.AnyUser(ctx); err != nil || exists {
		// Answered before the password is hashed: anyone may send this.
		if err == nil {
			err = ErrNoToken
		}
		return nil, err
	}
	var text texts
	u := &store.User{
		Name:    text.required(b.Name, "/name"),
		Email:   deref(text.email(&b.Email, "/email")),
		Company: text.optional(b.Company, "/company"),
		Role:    string(deref(b.Role)),
		Status:  string(deref(b.Status)),
	}
	if err := text.err(); err != nil {
		return nil, err
	}
	var err error
	if u.PasswordHash, err = h.passwords.Hash(ctx, b.Password); err != nil {
		return nil, err
	}
	if u.Role == "" {
		u.Role = store.RoleMember
	}
	if u.Status == "" {
		u.Status = store.StatusActive
	}

	if p == nil {
		err = h.store.CreateFirstUser(ctx, u)
		if errors.Is(err, store.ErrUsersExist) {
			return nil, ErrNoToken // only the first user may be created without one
		}
	} else {
		err = h.store.CreateUser(ctx, u)
	}
	if err != nil {
		return nil, err
	}
	return gen.CreateUser201JSONResponse{
		Body:    userOut(u),
		Headers: gen.CreateUser201ResponseHeaders{Location: ptr("/users/" + u.ID.Hex()), ETag: ptr(etag(u.Revision))},
	}, nil
}

// ListUsers lists users.
func (h *Handler) ListUsers(ctx context.Context, req gen.ListUsersRequestObject) (gen.ListUsersResponseObject, error) {
	prm := req.Params
	q := listQuery{resource: "users", sort: string(deref(prm.Sort)), limit: prm.Limit, cursor: prm.Cursor, total: prm.IncludeTotal}
	if q.sort == "" {
		q.sort = string(gen.ListUsersParamsSortMinusCreatedAt)
	}
	opts, err := h.options(q)
	if err != nil {
		return nil, err
	}
	var text texts
	filter := store.UserFilter{Status: string(deref(prm.Status)), Role: string(deref(prm.Role)), Email: normalizeEmail(string(deref(prm.Email))),
		Search: text.parameter(prm.Q, "q"), UpdatedSince: prm.UpdatedSince}
	if err := text.err(); err != nil {
		return nil, err
	}
	page, err := h.store.ListUsers(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	out := gen.UserList{Data: make([]gen.User, len(page.Items))}
	for i := range page.Items {
		out.Data[i] = userOut(&page.Items[i])
	}
	lp := pageOf(ctx, h, q, page)
	out.NextCursor, out.Total = lp.next, lp.total
	return gen.ListUsers200JSONResponse{Body: out, Headers: gen.ListUsers200ResponseHeaders{Link: lp.link}}, nil
}

// GetCurrentUser returns the signed-in user.
func (h *Handler) GetCurrentUser(ctx context.Context, req gen.GetCurrentUserRequestObject) (gen.GetCurrentUserResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	u, err := h.store.GetUser(ctx, p.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	tag := meETag(u)
	if same, err := notModified(req.Params.IfNoneMatch, tag); same || err != nil {
		return gen.GetCurrentUser304Response{Headers: gen.NotModifiedResponseHeaders{ETag: &tag}}, err
	}
	body, err := userJSON(userOut(u))
	return recordAnswer{body, tag}, err
}

// GetUser returns a user.
func (h *Handler) GetUser(ctx context.Context, req gen.GetUserRequestObject) (gen.GetUserResponseObject, error) {
	id, err := parseID(req.Id, "")
	if err != nil {
		return nil, err
	}
	u, err := h.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if same, err := notModified(req.Params.IfNoneMatch, etag(u.Revision)); same || err != nil {
		return gen.GetUser304Response{Headers: gen.NotModifiedResponseHeaders{ETag: ptr(etag(u.Revision))}}, err
	}
	body, err := userJSON(userOut(u))
	return recordAnswer{body, etag(u.Revision)}, err
}

// userEdit is a requested change to a user, from PUT or PATCH.
type userEdit struct {
	changes         store.UserChanges
	password        *string // new password, in clear
	currentPassword *string
}

// ReplaceUser replaces a user's editable fields.
func (h *Handler) ReplaceUser(ctx context.Context, req gen.ReplaceUserRequestObject) (gen.ReplaceUserResponseObject, error) {
	b := req.Body
	var text texts
	edit := userEdit{
		changes: store.UserChanges{
			Name:    ptr(text.required(b.Name, "/name")),
			Email:   text.email(&b.Email, "/email"),
			Company: ptr(text.optional(b.Company, "/company")),
			Role:    ptr(string(b.Role)),
			Status:  ptr(string(b.Status)),
		},
		password:        b.Password,
		currentPassword: b.CurrentPassword,
	}
	if err := text.err(); err != nil {
		return nil, err
	}
	u, err := h.editUser(ctx, req.Id, req.Params.IfMatch, edit)
	if err != nil {
		return nil, err
	}
	return gen.ReplaceUser200JSONResponse{Body: userOut(u), Headers: gen.ReplaceUser200ResponseHeaders{ETag: ptr(etag(u.Revision))}}, nil
}

// UpdateUser applies a JSON Merge Patch to a user.
func (h *Handler) UpdateUser(ctx context.Context, req gen.UpdateUserRequestObject) (gen.UpdateUserResponseObject, error) {
	b := req.ApplicationMergePatchPlusJSONBody
	if b == nil {
		b = req.JSONBody
	}
	if b == nil {
		return nil, invalidField("", "a JSON object with the fields to change is required")
	}
	var text texts
	edit := userEdit{
		changes: store.UserChanges{
			Name:    text.given(b.Name, "/name"),
			Email:   text.email(b.Email, "/email"),
			Company: text.patched(b.Company, "/company"),
			Role:    mapPtr(b.Role, func(r gen.UserRole) string { return string(r) }),
			Status:  mapPtr(b.Status, func(s gen.UserStatus) string { return string(s) }),
		},
		password:        b.Password,
		currentPassword: b.CurrentPassword,
	}
	if err := text.err(); err != nil {
		return nil, err
	}
	u, err := h.editUser(ctx, req.Id, req.Params.IfMatch, edit)
	if err != nil {
		return nil, err
	}
	return gen.UpdateUser200JSONResponse{Body: userOut(u), Headers: gen.UpdateUser200ResponseHeaders{ETag: ptr(etag(u.Revision))}}, nil
}

// editUser applies edit to the user idHex, as the signed-in user may.
func (h *Handler) editUser(ctx context.Context, idHex string, ifMatch *string, edit userEdit) (*store.User, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	id, err := parseID(idHex, "")
	if err != nil {
		return nil, err
	}
	if edit.currentPassword != nil && edit.password == nil {
		// Said, or a client would believe that a password nobody checked
		// was right.
		return nil, errCurrentPasswordUnused
	}
	// Checking the current password is a sign-in attempt, throttled like one:
	// a stolen access token must not buy unlimited guesses at it.
	throttleKey, ip := "current-password\x00"+id.Hex(), requestInfoFrom(ctx).clientIP
	var guess *attempt
	if edit.currentPassword != nil {
		if guess, err = h.throttle.begin(throttleKey, ip); err != nil {
			return nil, err
		}
		defer guess.end()
	}

	var updated *store.User
	var newHash *string // the new password's, hashed once the change is allowed
	err = retryStale(ifMatch, func() error {
		cur, err := h.store.GetUser(ctx, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(ifMatch, cur.Revision, meETag(cur)); err != nil {
			return err
		}
		// Re-sending a field's current value needs no permission to change it.
		changes := edit.changes.Effective(cur)
		if err := h.mayEditUser(ctx, p, cur, changes, edit.password != nil, edit.currentPassword); err != nil {
			if errors.Is(err, errWrongCurrentPassword) {
				guess.failed()
			}
			return err
		}
		if edit.password != nil {
			// Only now: a request refused for its permissions or its user
			// costs no hash (argon2id, 19 MiB).
			if newHash == nil {
				hash, err := h.passwords.Hash(ctx, *edit.password)
				if err != nil {
					return err
				}
				newHash = &hash
			}
			changes.PasswordHash = newHash
		}
		if changes.None() {
			updated = cur
			return nil
		}
		if changes.PasswordHash != nil || (changes.Status != nil && *changes.Status != store.StatusActive) {
			// A new password or a deactivation ends every access token
			// issued before, for good: reactivating does not bring them back.
			changes.TokenVersion = ptr(cur.TokenVersion + 1)
		}
		updated, err = h.store.UpdateUser(ctx, id, cur.Revision, changes)
		return err
	})
	if err != nil {
		return nil, err
	}

	if edit.changes.Role != nil || edit.changes.Status != nil || edit.password != nil {
		h.principals.forget(id)
	}
	if edit.password != nil || updated.Status != store.StatusActive {
		// A new password or a deactivation ends every sign-in of the user.
		if err := h.store.RevokeUserTokens(ctx, id); err != nil {
			return nil, err
		}
	}
	return updated, nil
}

var (
	// errWrongCurrentPassword is the 400 for a wrong current_password.
	errWrongCurrentPassword = invalidField("/current_password", "is not your current password")
	// errCurrentPasswordUnused is the 400 for a current_password sent
	// without a new password.
	errCurrentPasswordUnused = invalidField("/current_password", "is only read with a new password; leave it out")
)

// mayEditUser applies API.md's rules: admins change anything; members change
// their own name, company and password (the password only with the current
// one), never their role, status or email, and nobody else's profile.
func (h *Handler) mayEditUser(ctx context.Context, p *Principal, cur *store.User, ch store.UserChanges, newPassword bool, currentPassword *string) error {
	self := p.ID == cur.ID
	if !self && !p.IsAdmin {
		return forbidden("Members may only change their own profile.")
	}
	if !p.IsAdmin {
		for _, f := range []struct {
			name    string
			changed bool
		}{{"role", ch.Role != nil}, {"status", ch.Status != nil}, {"email", ch.Email != nil}} {
			if f.changed {
				return forbidden("Members cannot change their own %s; ask an admin.", f.name)
			}
		}
	}
	if newPassword && self {
		if currentPassword == nil {
			return invalidField("/current_password", "is required to change your own password")
		}
		ok, _, err := h.passwords.Verify(ctx, *currentPassword, cur.PasswordHash)
		if err != nil {
			return err
		}
		if !ok {
			return errWrongCurrentPassword
		}
	}
	return nil
}

// DeleteUser deletes a user who owns nothing any more.
func (h *Handler) DeleteUser(ctx context.Context, req gen.DeleteUserRequestObject) (gen.DeleteUserResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireAdmin(p, "delete users"); err != nil {
		return nil, err
	}
	id, err := parseID(req.Id, "")
	if err != nil {
		return nil, err
	}
	err = retryStale(req.Params.IfMatch, func() error {
		cur, err := h.store.GetUser(ctx, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(req.Params.IfMatch, cur.Revision, meETag(cur)); err != nil {
			return err
		}
		return h.store.DeleteUser(ctx, id, cur.Revision)
	})
	if err != nil {
		var ref *store.ReferencedError
		if errors.As(err, &ref) {
			return nil, &ConflictError{Detail: "The user still owns " + ref.By + "; reassign them, or deactivate the user (status inactive) instead."}
		}
		return nil, err
	}
	h.principals.forget(id)
	if err := h.store.RevokeUserTokens(ctx, id); err != nil {
		return nil, err
	}
	return gen.DeleteUser204Response{}, nil
}

// mapPtr applies f to *p, keeping nil as nil.
func mapPtr[T, U any](p *T, f func(T) U) *U {
	if p == nil {
		return nil
	}
	return ptr(f(*p))
}
