//! The model of the contract the model test checks against: each accepted event's state (what
//! it still owes the receiver), advanced by what the receiver saw and what the dead letters
//! hold; what a back-fill and a retention pass must do to it; and the checks over the whole
//! receiver log at the end (order, downtime, dead letters).

use std::collections::{HashMap, HashSet};

use courier::core::model::DeadLetter;

use crate::system::{EPS, Mode, Seen};

/// Where an accepted event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum St {
    /// Not delivered (accepted, or put back from the dead letters): owes one delivery without
    /// the replay flag.
    Pending,
    /// Delivered and back-filled: owes one delivery with the replay flag.
    Copy,
    /// Delivered; retained for back-fill.
    Delivered,
    /// Delivered, then removed by retention.
    Removed,
    Dead,
}

#[derive(Debug)]
pub struct Event {
    pub ep: usize,
    pub seq: u64,
    pub id: String,
    /// Accepted at (unix ms).
    pub at: u64,
    pub st: St,
    /// Attempts answered since it last became pending.
    pub tries: u32,
    /// Put back from the dead letters at least once.
    pub replayed: bool,
}

/// One back-fill, for the order check: from receiver log entry `from` on, the events of `seqs`
/// (its copies and the endpoint's events not started when it was committed) are first
/// attempted in seq order.
#[derive(Debug)]
struct Mark {
    ep: usize,
    from: usize,
    seqs: HashSet<u64>,
}

/// What a back-fill of a window must answer, summed over its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Gone {
        retained_since_ms: Option<u64>,
    },
    Done {
        reopened: Vec<u64>,
        pending: u64,
        cut: bool,
        retained_since_ms: Option<u64>,
    },
}

/// A back-fill's answer summed over its chunks, as the journal gives it: `Ok((reopened,
/// pending, cut, retained_since_ms))`, or `Err(retained_since_ms)` for `WindowGone`.
pub type Answer = Result<(u64, u64, bool, Option<u64>), Option<u64>>;

impl Expect {
    pub fn answer(&self) -> Answer {
        match self {
            Expect::Gone { retained_since_ms } => Err(*retained_since_ms),
            Expect::Done {
                reopened,
                pending,
                cut,
                retained_since_ms,
            } => Ok((reopened.len() as u64, *pending, *cut, *retained_since_ms)),
        }
    }
}

/// What a case exercised (the scripted cases assert that they reach what they are for).
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub backfills: u32,
    pub window_gone: u32,
    pub copies: u32,
    pub copies_delivered: u32,
    pub copies_dead: u32,
    pub removed: u32,
}

#[derive(Default)]
pub struct Model {
    pub events: Vec<Event>,
    by_id: HashMap<String, usize>,
    /// Per endpoint, the first receiver log entry not yet applied.
    next: [usize; EPS],
    /// Per endpoint, when the newest event retention removed was accepted (0: none).
    removed_through: [u64; EPS],
    marks: Vec<Mark>,
    pub stats: Stats,
}

impl Model {
    pub fn accept(&mut self, ep: usize, seq: u64, id: String, at: u64) {
        self.by_id.insert(id.clone(), self.events.len());
        self.events.push(Event {
            ep,
            seq,
            id,
            at,
            st: St::Pending,
            tries: 0,
            replayed: false,
        });
    }

    fn of(&self, ep: usize) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.ep == ep)
    }

    /// The endpoint's events in seq order (acceptance order).
    pub fn times(&self, ep: usize) -> Vec<u64> {
        self.of(ep).map(|e| e.at).collect()
    }

    /// Events the endpoint's backlog must count.
    pub fn pending(&self, ep: usize) -> u64 {
        self.of(ep)
            .filter(|e| matches!(e.st, St::Pending | St::Copy))
            .count() as u64
    }

    /// Applies the attempts that answered since the last call (per endpoint in the order they
    /// were made: one at a time with `max_in_flight` 1), then the dead letters now held.
    pub fn observe(&mut self, log: &[Seen], dead: &HashSet<String>) -> Result<(), String> {
        for ep in 0..EPS {
            let mut i = self.next[ep];
            while i < log.len() {
                let x = &log[i];
                if x.ep == ep {
                    if !x.done {
                        break;
                    }
                    self.attempted(x)?;
                }
                i += 1;
            }
            self.next[ep] = i;
        }
        for e in &mut self.events {
            match (dead.contains(&e.id), e.st) {
                (true, St::Pending | St::Copy) => {
                    if e.st == St::Copy {
                        self.stats.copies_dead += 1;
                    }
                    e.st = St::Dead;
                    e.tries = 0;
                }
                (true, St::Dead) => {}
                (true, st) => return Err(format!("{} is a dead letter but {st:?}", e.id)),
                (false, St::Dead) => {
                    return Err(format!("{} left the dead letters unasked", e.id));
                }
                (false, _) => {}
            }
        }
        Ok(())
    }

    /// One answered attempt: only an event that owes a delivery is attempted, with the replay
    /// flag exactly when it owes a back-filled copy; a 2xx pays what it owes.
    fn attempted(&mut self, x: &Seen) -> Result<(), String> {
        let Some(&i) = self.by_id.get(&x.event_id) else {
            return Err(format!("attempt of unknown event {}", x.event_id));
        };
        let e = &mut self.events[i];
        let copy = match e.st {
            St::Pending => false,
            St::Copy => true,
            st => {
                return Err(format!(
                    "{} attempted again ({:?}, replay flag {}) but it is {st:?}: {}",
                    e.id,
                    x.answer,
                    x.replay,
                    if st == St::Delivered {
                        "delivered twice"
                    } else {
                        "it owes nothing"
                    }
                ));
            }
        };
        if x.replay != copy {
            return Err(format!(
                "{} attempted with replay flag {} while {:?}",
                e.id, x.replay, e.st
            ));
        }
        e.tries += 1;
        if x.answer == Mode::Ok {
            e.st = St::Delivered;
            e.tries = 0;
            if copy {
                self.stats.copies_delivered += 1;
            }
        }
        Ok(())
    }

    /// A dead letter put back: it owes a delivery again (sent without the replay flag, even
    /// when it died as a back-filled copy: a dead-letter replay is not a back-fill).
    pub fn replayed(&mut self, id: &str) -> Result<(), String> {
        let e = &mut self.events[self.by_id[id]];
        if e.st != St::Dead {
            return Err(format!("replayed {id}, which is {:?}", e.st));
        }
        e.st = St::Pending;
        e.tries = 0;
        e.replayed = true;
        Ok(())
    }

    /// What a back-fill of `[since, until]` (inclusive ms, as the route hands it to the
    /// journal) must answer: the window is gone when retention removed events from it and no
    /// row the endpoint still holds is accepted before its end; otherwise the delivered events
    /// still retained are reopened, those still pending counted.
    pub fn expect_backfill(&self, ep: usize, since: u64, until: u64) -> Expect {
        let rows: Vec<&Event> = self
            .of(ep)
            .filter(|e| matches!(e.st, St::Pending | St::Copy | St::Delivered))
            .collect();
        let retained_since_ms = rows.first().map(|e| e.at);
        let through = self.removed_through[ep];
        let cut = through > 0 && since <= through;
        if cut && retained_since_ms.is_none_or(|at| at > until) {
            return Expect::Gone { retained_since_ms };
        }
        let window = || rows.iter().filter(|e| (since..=until).contains(&e.at));
        Expect::Done {
            reopened: window()
                .filter(|e| e.st == St::Delivered)
                .map(|e| e.seq)
                .collect(),
            pending: window().filter(|e| e.st != St::Delivered).count() as u64,
            cut,
            retained_since_ms,
        }
    }

    /// The back-fill committed as expected: its events owe a copy. `from` is the length of the
    /// receiver log before the back-fill was sent, `log` the log once the scheduler has it
    /// (no attempt answers meanwhile: time stands still). Its copies, and the endpoint's other
    /// events not started by then (no attempt answered since they became pending, none under
    /// way), must then first be attempted in seq order.
    pub fn backfilled(&mut self, ep: usize, expect: &Expect, log: &[Seen], from: usize) {
        self.stats.backfills += 1;
        let Expect::Done { reopened, .. } = expect else {
            self.stats.window_gone += 1;
            return;
        };
        let under_way: HashSet<&str> = log
            .iter()
            .filter(|x| x.ep == ep && !x.done)
            .map(|x| x.event_id.as_str())
            .collect();
        for e in self.events.iter_mut().filter(|e| e.ep == ep) {
            if reopened.contains(&e.seq) {
                e.st = St::Copy;
                e.tries = 0;
                self.stats.copies += 1;
            }
        }
        let seqs = self
            .of(ep)
            .filter(|e| matches!(e.st, St::Pending | St::Copy))
            .filter(|e| {
                reopened.contains(&e.seq) || (e.tries == 0 && !under_way.contains(e.id.as_str()))
            })
            .map(|e| e.seq)
            .collect();
        self.marks.push(Mark { ep, from, seqs });
    }

    /// What a retention pass at `cutoff` (now − retention) must remove: the delivered events
    /// accepted before it that lie below the endpoint's cursor (`cursors`, read from the
    /// journal; rows at or above it are never removed — "The retained log").
    pub fn expect_sweep(&self, cutoff: u64, cursors: &[u64; EPS]) -> Vec<usize> {
        (0..self.events.len())
            .filter(|&i| {
                let e = &self.events[i];
                e.st == St::Delivered && e.seq < cursors[e.ep] && e.at < cutoff
            })
            .collect()
    }

    pub fn swept(&mut self, removed: &[usize]) {
        for &i in removed {
            let e = &mut self.events[i];
            e.st = St::Removed;
            self.removed_through[e.ep] = self.removed_through[e.ep].max(e.at);
            self.stats.removed += 1;
        }
    }

    /// The checks over the whole run, once everything was delivered or dead-lettered.
    pub fn check_final(&self, log: &[Seen], dead: &[DeadLetter]) -> Result<(), String> {
        for e in &self.events {
            if matches!(e.st, St::Pending | St::Copy) {
                return Err(format!("{} still owes a delivery ({:?})", e.id, e.st));
            }
        }
        for d in dead {
            if d.progress.attempts < 3 {
                return Err(format!(
                    "{} dead after {} attempts",
                    d.event_id, d.progress.attempts
                ));
            }
        }
        self.check_order(log)?;
        check_down_rule(log, dead)
    }

    fn check_order(&self, log: &[Seen]) -> Result<(), String> {
        let ev = |x: &Seen| &self.events[self.by_id[&x.event_id]];
        // Strict order of first deliveries (without the replay flag), for events never put
        // back from the dead letters.
        let mut last = [0u64; EPS];
        for x in log.iter().filter(|x| x.answer == Mode::Ok && !x.replay) {
            let e = ev(x);
            if e.replayed {
                continue;
            }
            if e.seq <= last[e.ep] {
                return Err(format!(
                    "ep{} delivered seq {} after {}",
                    e.ep, e.seq, last[e.ep]
                ));
            }
            last[e.ep] = e.seq;
        }
        // After a back-fill, its copies and the events not yet started go out in seq order:
        // the copies ahead of every newer event waiting.
        for m in &self.marks {
            let mut firsts = Vec::new();
            let mut met = HashSet::new();
            for x in &log[m.from..] {
                let e = ev(x);
                if e.ep == m.ep && m.seqs.contains(&e.seq) && met.insert(e.seq) {
                    firsts.push(e.seq);
                }
            }
            if firsts.windows(2).any(|w| w[0] > w[1]) {
                return Err(format!(
                    "ep{}: after a back-fill (log entry {}), first attempts of seqs {:?} out of order: {:?}",
                    m.ep, m.from, m.seqs, firsts
                ));
            }
        }
        Ok(())
    }
}

/// Down rule: between two endpoint-caused dead letters of an endpoint, the receiver answered
/// 2xx or 4xx at least once (held events are not dead-lettered one after another).
fn check_down_rule(log: &[Seen], dead: &[DeadLetter]) -> Result<(), String> {
    for e in 0..EPS {
        let mut log_pos: HashMap<&str, usize> = HashMap::new();
        for (i, x) in log.iter().enumerate().filter(|(_, x)| x.ep == e) {
            log_pos.insert(x.event_id.as_str(), i);
        }
        let mut deaths: Vec<(usize, &DeadLetter)> = dead
            .iter()
            .filter(|d| d.endpoint == format!("ep{e}"))
            .filter_map(|d| log_pos.get(d.event_id.as_str()).map(|p| (*p, d)))
            .collect();
        deaths.sort_by_key(|(p, _)| *p);
        let mut prev: Option<usize> = None;
        for (p, d) in deaths {
            let blames = d
                .progress
                .last_error
                .as_ref()
                .is_some_and(|le| le.code == "HTTP_5XX" || le.code == "ECONNREFUSED");
            if !blames {
                continue;
            }
            if let Some(q) = prev {
                let answered = log[q + 1..p]
                    .iter()
                    .any(|x| x.ep == e && matches!(x.answer, Mode::Ok | Mode::Rejected));
                if !answered {
                    return Err(format!(
                        "ep{e} dead-lettered {} while down (held events must not be dead-lettered one after another)",
                        d.event_id
                    ));
                }
            }
            prev = Some(p);
        }
    }
    Ok(())
}

/// The checks see what they exist for: a copy sent behind a newer event that was waiting, a
/// copy without the replay flag, a second delivery.
#[test]
fn the_model_refuses_what_the_contract_forbids() {
    let seen = |id: &str, replay: bool| Seen {
        ep: 0,
        event_id: id.into(),
        answer: Mode::Ok,
        replay,
        done: true,
    };
    let mut m = Model::default();
    for q in 1..=3 {
        m.accept(0, q, format!("e{q}"), q);
    }
    let mut log = vec![seen("e1", false), seen("e2", false)];
    m.observe(&log, &HashSet::new()).unwrap();
    let expect = m.expect_backfill(0, 0, 10);
    assert_eq!(
        expect,
        Expect::Done {
            reopened: vec![1, 2],
            pending: 1,
            cut: false,
            retained_since_ms: Some(1)
        }
    );
    m.backfilled(0, &expect, &log, log.len());
    log.extend([seen("e3", false), seen("e1", true), seen("e2", true)]);
    m.observe(&log, &HashSet::new()).unwrap();
    let err = m.check_order(&log).unwrap_err();
    assert!(err.contains("out of order"), "{err}");

    let mut m = Model::default();
    m.accept(0, 1, "e1".into(), 1);
    let twice = [seen("e1", false), seen("e1", false)];
    assert!(m.observe(&twice, &HashSet::new()).is_err());
    let mut m = Model::default();
    m.accept(0, 1, "e1".into(), 1);
    m.observe(&twice[..1], &HashSet::new()).unwrap();
    let expect = m.expect_backfill(0, 0, 10);
    m.backfilled(0, &expect, &twice[..1], 1);
    assert!(
        m.observe(&twice, &HashSet::new()).is_err(),
        "a copy without the flag"
    );
}
