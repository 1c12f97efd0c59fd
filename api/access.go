package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/opencrm/crm/store"
)

// Principal is the signed-in user a request acts as.
type Principal struct {
	ID      bson.ObjectID
	IDHex   string
	IsAdmin bool

	tokenVersion int64 // the user's current token version
}

type principalKey struct{}

// WithPrincipal records the signed-in user in ctx.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the signed-in user of ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// principal returns the signed-in user or ErrUnauthenticated. Operations that
// need a token have one by the time the handler runs (the validator checks
// security); this also guards the operations where the token is optional.
func principal(ctx context.Context) (*Principal, error) {
	if p := PrincipalFrom(ctx); p != nil {
		return p, nil
	}
	return nil, ErrUnauthenticated
}

// Authenticate verifies an access token and returns the user it belongs to, who
// must still exist, be active and be at the token's version (a new password or
// a deactivation moves the user past every token issued before): each ends
// the user's access within principalCacheTTL everywhere, and at once on this
// server.
func (h *Handler) Authenticate(ctx context.Context, token string) (*Principal, error) {
	access, ok := h.principals.verified(token)
	if !ok {
		a, err := h.tokens.Check(token)
		if err != nil {
			return nil, err
		}
		id, err := bson.ObjectIDFromHex(a.Subject)
		if err != nil {
			return nil, fmt.Errorf("%w: subject is not a user id", ErrUnauthenticated)
		}
		access = verifiedToken{user: id, version: a.Version, until: a.Until}
		h.principals.rememberToken(token, access)
	}
	p, ok := h.principals.get(access.user)
	if ok && access.version > p.tokenVersion {
		// Newer than what this server remembers: the change was made on
		// another server, and the user signed in again since.
		ok = false
	}
	if !ok {
		var err error
		if p, err = h.loadPrincipal(ctx, access.user); err != nil {
			return nil, err
		}
	}
	if p.tokenVersion != access.version {
		return nil, fmt.Errorf("%w: the token predates the user's new password or deactivation", ErrUnauthenticated)
	}
	return p, nil
}

// loadPrincipal reads the user id from the store, who must exist and be
// active, and caches them.
func (h *Handler) loadPrincipal(ctx context.Context, id bson.ObjectID) (*Principal, error) {
	forgets := h.principals.forgetsSoFar()
	u, err := h.store.GetUser(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: the token's user no longer exists", ErrUnauthenticated)
	case err != nil:
		return nil, err
	case u.Status != store.StatusActive:
		return nil, fmt.Errorf("%w: the token's user is deactivated", ErrUnauthenticated)
	}
	p := &Principal{ID: u.ID, IDHex: u.ID.Hex(), IsAdmin: u.Role == store.RoleAdmin, tokenVersion: u.TokenVersion}
	h.principals.put(p, forgets)
	return p, nil
}

// principalCacheTTL bounds how long a role change, deactivation or deletion
// made by another server process takes to reach this one. Within one process,
// changes take effect at once (the cache entry is dropped).
const principalCacheTTL = 5 * time.Second

// principalCache saves a database read per request — looking the user up by id
// costs as much as the request's own work on the embedded engine — and the
// verification of a token already verified: the outcome for one exact token
// string cannot change before it expires.
type principalCache struct {
	mu      sync.Mutex
	entries map[bson.ObjectID]cachedPrincipal
	tokens  map[string]verifiedToken
	// forgets counts calls to forget: a user read before one of them may be
	// out of date, and is not cached.
	forgets uint64
}

type verifiedToken struct {
	user    bson.ObjectID
	version int64
	until   time.Time
}

type cachedPrincipal struct {
	p       *Principal
	expires time.Time
}

func newPrincipalCache() *principalCache {
	return &principalCache{entries: make(map[bson.ObjectID]cachedPrincipal), tokens: make(map[string]verifiedToken)}
}

// maxCachedEntries bounds each map: past it, the cache starts over rather than
// track recency.
const maxCachedEntries = 10_000

// verified returns what a token verified before and still valid grants.
func (c *principalCache) verified(token string) (verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.tokens[token]
	if !ok || time.Now().After(v.until) {
		return verifiedToken{}, false
	}
	return v, true
}

func (c *principalCache) rememberToken(token string, v verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tokens) >= maxCachedEntries {
		clear(c.tokens)
	}
	c.tokens[token] = v
}

func (c *principalCache) get(id bson.ObjectID) (*Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || time.Now().After(e.expires) {
		return nil, false
	}
	return e.p, true
}

// forgetsSoFar is the count put compares with; read it before reading a user.
func (c *principalCache) forgetsSoFar() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forgets
}

// put caches p, read from the store when forgetsSoFar said forgets, unless a
// user was forgotten since: the read may have come before that change.
func (c *principalCache) put(p *Principal, forgets uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.forgets != forgets {
		return
	}
	if len(c.entries) >= maxCachedEntries {
		clear(c.entries)
	}
	c.entries[p.ID] = cachedPrincipal{p: p, expires: time.Now().Add(principalCacheTTL)}
}

// forget drops a user whose role, status, token version or existence just
// changed.
func (c *principalCache) forget(id bson.ObjectID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
	c.forgets++
}

// requireAdmin allows admins only.
func requireAdmin(p *Principal, action string) error {
	if !p.IsAdmin {
		return forbidden("Only admins may %s.", action)
	}
	return nil
}

// requireOwner allows admins, and members acting on what they own.
func requireOwner(p *Principal, owner *bson.ObjectID, what string) error {
	if p.IsAdmin || (owner != nil && *owner == p.ID) {
		return nil
	}
	return forbidden("Members may only change %s that they own.", what)
}

// requireSelfAssigned allows admins to name any user, and members only themselves.
func requireSelfAssigned(p *Principal, assignee bson.ObjectID, field string) error {
	if p.IsAdmin || assignee == p.ID {
		return nil
	}
	return &ForbiddenError{Detail: fmt.Sprintf("Members may only set %s to their own id.", field)}
}
