package store

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Bulk import, for demo data and migrations: many records per round trip, with
// the ids and timestamps the caller chose, and records whose id or email exists
// already skipped rather than failing the batch — so an import can be re-run.
// Unlike the Create methods, Import does not check references: the caller
// vouches for them.

// ImportUsers inserts users and returns how many were new.
func (s *Store) ImportUsers(ctx context.Context, users []User) (int, error) {
	for i := range users {
		users[i].NameKey = sortKey(users[i].Name)
	}
	return importMany(ctx, s, s.users, users)
}

// ImportCustomers inserts customers and returns how many were new.
func (s *Store) ImportCustomers(ctx context.Context, customers []Customer) (int, error) {
	for i := range customers {
		customers[i].NameKey = sortKey(customers[i].Name)
	}
	return importMany(ctx, s, s.customers, customers)
}

// ImportInteractions inserts interactions and returns how many were new.
func (s *Store) ImportInteractions(ctx context.Context, interactions []Interaction) (int, error) {
	return importMany(ctx, s, s.interactions, interactions)
}

// duplicateKeyCode is MongoDB's E11000.
const duplicateKeyCode = 11000

func importMany[T any](ctx context.Context, s *Store, coll collection, docs []T) (int, error) {
	if len(docs) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*s.timeout)
	defer cancel()
	res, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	inserted := 0
	if res != nil {
		inserted = len(res.InsertedIDs)
	}
	var bulk mongo.BulkWriteException
	if errors.As(err, &bulk) && bulk.WriteConcernError == nil {
		for _, we := range bulk.WriteErrors {
			if we.Code != duplicateKeyCode {
				return inserted, translate(err)
			}
		}
		return len(docs) - len(bulk.WriteErrors), nil
	}
	return inserted, translate(err)
}
