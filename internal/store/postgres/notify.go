package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// TriggerNotify returns a channel that receives a value after TriggerAdd commits a new
// trigger, in this process or any other on the database (LISTEN/NOTIFY), so that a worker
// waiting for pending triggers need not poll for those other processes add. Values
// coalesce: one receive may stand for many commits. The channel also receives a value
// after the listening connection was lost and re-established, since notifications sent
// meanwhile are lost. It stops receiving when ctx ends.
//
// The first call opens one connection that LISTENs for the store's life; it returns once
// the LISTEN is in effect, so that every commit after it is seen.
func (s *Store) TriggerNotify(ctx context.Context) (<-chan struct{}, error) {
	var err error
	s.listenOnce.Do(func() {
		s.notify, err = startNotifier(s.pool.Config().ConnConfig, triggerChannel)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: listen for triggers: %w", err)
	}
	if s.notify == nil {
		return nil, errors.New("postgres: listen for triggers: the listener failed to start earlier")
	}
	return s.notify.subscribe(ctx), nil
}

// notifier holds one connection LISTENing on a channel and fans its notifications out.
type notifier struct {
	cfg     *pgx.ConnConfig
	channel string
	cancel  context.CancelFunc
	done    chan struct{}

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func startNotifier(cfg *pgx.ConnConfig, channel string) (*notifier, error) {
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{cfg: cfg, channel: channel, cancel: cancel, done: make(chan struct{}), subs: map[chan struct{}]struct{}{}}
	conn, err := n.listen(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	go n.loop(ctx, conn)
	return n, nil
}

func (n *notifier) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, n.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{n.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// loop waits for notifications; on a lost connection it reconnects, with a backoff of up
// to 5 s while the database is away.
func (n *notifier) loop(ctx context.Context, conn *pgx.Conn) {
	defer close(n.done)
	backoff := 50 * time.Millisecond
	for {
		if conn == nil {
			var err error
			if conn, err = n.listen(ctx); err != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = 50 * time.Millisecond
			n.broadcast() // what was sent while we were away is lost: look again
		}
		_, err := conn.WaitForNotification(ctx)
		if err == nil {
			n.broadcast()
			continue
		}
		conn.Close(context.Background())
		conn = nil
		if ctx.Err() != nil {
			return
		}
	}
}

func (n *notifier) subscribe(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.subs[ch] = struct{}{}
	n.mu.Unlock()
	context.AfterFunc(ctx, func() {
		n.mu.Lock()
		delete(n.subs, ch)
		n.mu.Unlock()
	})
	return ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default: // a value is already waiting: it stands for this one too
		}
	}
}

func (n *notifier) stop() {
	n.cancel()
	<-n.done
}
