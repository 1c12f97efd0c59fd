package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Refresh token field names.
const (
	refreshFieldUserID    = "user_id"
	refreshFieldFamily    = "family"
	refreshFieldUsedAt    = "used_at"
	refreshFieldRevokedAt = "revoked_at"
	refreshFieldExpiresAt = "expires_at"
)

// ErrTokenReused: a refresh token that was already exchanged was presented
// again. Its whole family has been revoked, since one of the two presenters
// holds a stolen copy.
var ErrTokenReused = errors.New("store: refresh token reused")

// RefreshToken is the stored side of a refresh token. Only a hash of the token
// is kept, so that a copy of the database does not yield usable tokens.
type RefreshToken struct {
	Hash      string        `bson:"_id"`
	UserID    bson.ObjectID `bson:"user_id"`
	Family    string        `bson:"family"` // every token descended from one sign-in
	CreatedAt time.Time     `bson:"created_at"`
	ExpiresAt time.Time     `bson:"expires_at"`
	UsedAt    *time.Time    `bson:"used_at,omitempty"`
	RevokedAt *time.Time    `bson:"revoked_at,omitempty"`
	// TokenVersion is the user's token version at the sign-in: a sign-in
	// that raced a password change or a deactivation cannot outlive it.
	TokenVersion int64 `bson:"token_version,omitempty"`
}

// CreateRefreshToken stores t.
func (s *Store) CreateRefreshToken(ctx context.Context, t *RefreshToken) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	t.CreatedAt = now()
	_, err := s.refreshTokens.InsertOne(ctx, t)
	return translate(err)
}

// FamilyRevoked reports whether the sign-in family was revoked. It reads the
// mark RevokeTokenFamily leaves, by _id: the tokens' own revoked_at is set
// by an update of many documents, which the engine need not make at once.
func (s *Store) FamilyRevoked(ctx context.Context, family string) (bool, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	return exists(ctx, s.claims, bson.D{{Key: fieldID, Value: familyRevokedKey(family)}})
}

// familyRevokedKey names the mark of a revoked family in the claims
// collection, whose old entries the janitor deletes: the mark is only needed
// while a refresh racing the revocation may still be storing its token.
func familyRevokedKey(family string) string { return "revoked-family/" + family }

// UseRefreshToken marks the token with hash as exchanged and returns it. It
// fails with ErrNotFound for an unknown, expired or revoked token, and with
// ErrTokenReused (after revoking the family) for one exchanged before; of
// concurrent exchanges of one token, exactly one succeeds.
func (s *Store) UseRefreshToken(ctx context.Context, hash string) (*RefreshToken, error) {
	defer s.lockKey([]byte(hash))()
	ctx, cancel := s.opContext(ctx)
	defer cancel()

	var t RefreshToken
	if err := s.refreshTokens.FindOne(ctx, bson.D{{Key: fieldID, Value: hash}}).Decode(&t); err != nil {
		return nil, translate(err)
	}
	switch {
	case t.RevokedAt != nil || !now().Before(t.ExpiresAt):
		return nil, ErrNotFound
	case t.UsedAt != nil:
		if err := s.RevokeTokenFamily(ctx, t.Family); err != nil {
			return nil, err
		}
		return nil, ErrTokenReused
	}

	filter := bson.D{{Key: fieldID, Value: hash}}
	switch {
	case !s.filterByIDOnly:
		filter = append(filter, bson.E{Key: refreshFieldUsedAt, Value: bson.D{{Key: "$exists", Value: false}}})
	case s.sharedEngine:
		// Another process may be exchanging the same token: the claim
		// decides which one does.
		if err := s.claim(ctx, "refresh-token/"+hash); errors.Is(err, ErrDuplicate) {
			if err := s.RevokeTokenFamily(ctx, t.Family); err != nil {
				return nil, err
			}
			return nil, ErrTokenReused
		} else if err != nil {
			return nil, err
		}
	}
	used := now()
	res, err := s.refreshTokens.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: refreshFieldUsedAt, Value: used}}}})
	if err != nil {
		return nil, translate(err)
	}
	if res.ModifiedCount == 0 {
		// Another process exchanged it between the read and the write.
		if err := s.RevokeTokenFamily(ctx, t.Family); err != nil {
			return nil, err
		}
		return nil, ErrTokenReused
	}
	t.UsedAt = &used
	return &t, nil
}

// RevokeRefreshToken revokes the family of the token with hash; an unknown
// token is not an error (signing out twice is fine).
func (s *Store) RevokeRefreshToken(ctx context.Context, hash string) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	var t RefreshToken
	err := s.refreshTokens.FindOne(ctx, bson.D{{Key: fieldID, Value: hash}},
		options.FindOne().SetProjection(bson.D{{Key: refreshFieldFamily, Value: 1}})).Decode(&t)
	if err != nil {
		if err = translate(err); errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	return s.RevokeTokenFamily(ctx, t.Family)
}

// RevokeTokenFamily revokes every token of a sign-in, marking the family as
// revoked first (see FamilyRevoked): a token stored after this update read
// the family finds the mark.
func (s *Store) RevokeTokenFamily(ctx context.Context, family string) error {
	if err := s.claim(ctx, familyRevokedKey(family)); err != nil && !errors.Is(err, ErrDuplicate) {
		return err
	}
	return s.revokeTokens(ctx, bson.D{{Key: refreshFieldFamily, Value: family}})
}

// RevokeUserTokens revokes every refresh token of a user: on deactivation,
// deletion and password change.
func (s *Store) RevokeUserTokens(ctx context.Context, userID bson.ObjectID) error {
	return s.revokeTokens(ctx, bson.D{{Key: refreshFieldUserID, Value: userID}})
}

func (s *Store) revokeTokens(ctx context.Context, filter bson.D) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	filter = append(filter, bson.E{Key: refreshFieldRevokedAt, Value: bson.D{{Key: "$exists", Value: false}}})
	_, err := s.refreshTokens.UpdateMany(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: refreshFieldRevokedAt, Value: now()}}}})
	return translate(err)
}

// DeleteExpiredRefreshTokens removes tokens that expired before cutoff; the
// embedded engine has no TTL indexes, so the server calls this periodically.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.deleteBefore(ctx, s.refreshTokens, refreshFieldExpiresAt, cutoff)
}
