package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// Sentinel errors. Every error that leaves this package either is one of these
// (compare with errors.Is) or is unexpected; the driver's own errors never leak
// their meaning to callers, only their text to the log.
var (
	// ErrNotFound: no record has the id (or key) asked for.
	ErrNotFound = errors.New("store: not found")
	// ErrDuplicate: a unique key is taken. The only unique keys are the
	// lower-cased emails of users and of customers.
	ErrDuplicate = errors.New("store: duplicate key")
	// ErrStale: the record's revision is not the one the caller expected
	// (an If-Match that no longer matches).
	ErrStale = errors.New("store: revision changed")
	// ErrReferenced: the record is still referenced by others and was not deleted.
	ErrReferenced = errors.New("store: still referenced")
	// ErrUnavailable: the database did not answer in time, cannot be reached,
	// or the embedded engine was too busy to take the operation in time.
	ErrUnavailable = errors.New("store: database unavailable")
)

// translate maps a driver error onto the sentinels above, keeping the original
// error in the chain for the log.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case mongo.IsDuplicateKeyError(err), isEngineUniqueViolation(err):
		return fmt.Errorf("%w: %w", ErrDuplicate, err)
	case isUnavailable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		return err
	}
}

// isEngineUniqueViolation recognises a unique index violation by an update on
// the bundled engine, which reports it as an internal error carrying SQLite's
// or PostgreSQL's message instead of MongoDB's E11000 (inserts do report E11000).
func isEngineUniqueViolation(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) &&
		(strings.Contains(ce.Message, "UNIQUE constraint failed") || strings.Contains(ce.Message, "(SQLSTATE 23505)"))
}

// isUnavailable reports errors that mean "the database is not answering", as
// opposed to "the database refused this operation".
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || mongo.IsTimeout(err) || mongo.IsNetworkError(err) {
		return true
	}
	// The bundled engine reports its own storage timing out (PostgreSQL not
	// answering in time) as an internal error with the network error's text.
	var ce mongo.CommandError
	if errors.As(err, &ce) && strings.Contains(ce.Message, "i/o timeout") {
		return true
	}
	var selection topology.ServerSelectionError
	return errors.As(err, &selection) ||
		errors.Is(err, topology.ErrTopologyClosed) ||
		errors.Is(err, mongo.ErrClientDisconnected)
}
