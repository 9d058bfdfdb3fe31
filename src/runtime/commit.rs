//! The commit thread: events applied in batches (group commit), and the
//! store probed and opened again after a failed write.

use super::*;

/// After a failed write: the store answers writes again once a test write
/// goes through. Opens the files again when that write fails too (or when
/// they could not be opened before).
pub(super) fn probe(slot: &StoreSlot, health: &Health, clock: &dyn Clock) {
    // No room for the reserve: no room for writes either, and sled is not
    // touched (a write that fails there needs the files opened again).
    if let (Some(_), Err(e)) = (slot.get(), slot.at.keep_reserve()) {
        debug!(error = %e, "the disk is still full");
        return;
    }
    let tried = match slot.get() {
        Some(store) => store.probe(clock.now()).map_err(|e| e.to_string()),
        None => Err("the database is not open".to_string()),
    };
    match tried {
        Ok(()) => {
            health.set_store(None, chrono::Utc::now());
            warn!("the store takes writes again");
        }
        Err(why) => {
            debug!(error = %why, "the store still refuses writes");
            if let Err(e) = slot.reopen() {
                error!(error = %e, "cannot open the database again; reads and writes wait for it");
                health.set_store(
                    Some(format!("the database cannot be opened again: {e}")),
                    chrono::Utc::now(),
                );
            }
        }
    }
}

pub(super) fn commit_loop(
    rx: std_mpsc::Receiver<Work>,
    slot: Arc<StoreSlot>,
    engines: Arc<arc_swap::ArcSwap<Engine>>,
    clock: Arc<dyn Clock>,
    marks: [Arc<Marks>; 4],
    health: Arc<Health>,
) {
    let mut last_probe: Option<Instant> = None;
    // People's commands go before bulk work (alert batches, backend
    // reports), and bulk work is cut into transactions of bounded size, so a
    // command never waits behind an alert storm for long.
    let mut people: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
    let mut bulk: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
    // Adapters' notes: each batch writes all that wait, and flushes them
    // with its events.
    let mut notes: Vec<Note> = Vec::new();
    let mut open = true;
    loop {
        if people.is_empty() && bulk.is_empty() && notes.is_empty() {
            if !open {
                return;
            }
            if health.store_ok() {
                match rx.recv() {
                    Ok(j) => sort_job(j, &mut people, &mut bulk, &mut notes),
                    Err(_) => return,
                }
            } else {
                // Refusing writes: try one now and then, to know when the
                // disk takes them again.
                match rx.recv_timeout(PROBE_EVERY) {
                    Ok(j) => sort_job(j, &mut people, &mut bulk, &mut notes),
                    Err(std_mpsc::RecvTimeoutError::Timeout) => {
                        probe(&slot, &health, clock.as_ref());
                        last_probe = Some(Instant::now());
                        continue;
                    }
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        }
        loop {
            match rx.try_recv() {
                Ok(j) => sort_job(j, &mut people, &mut bulk, &mut notes),
                Err(std_mpsc::TryRecvError::Empty) => break,
                Err(std_mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let batch: Vec<Job> = if !people.is_empty() {
            let n = people.len().min(MAX_BATCH);
            people.drain(..n).collect()
        } else {
            let mut weight = 0;
            let mut take = 0;
            for j in bulk.iter() {
                let w = job_weight(&j.event);
                if take > 0 && weight + w > MAX_BULK_WEIGHT {
                    break;
                }
                weight += w;
                take += 1;
            }
            bulk.drain(..take).collect()
        };
        let batch_notes = std::mem::take(&mut notes);
        // The engine in effect now decides the whole batch: a reload counts
        // from the next batch on.
        let engine = engines.load_full();
        let span = info_span!("batch", events = batch.len(), notes = batch_notes.len());
        let _g = span.enter();
        // The wall clock: liveness is judged by it, whatever the engine reads.
        health.set_busy(Some(chrono::Utc::now()));
        let mut results: Vec<Option<Result<Outcome, BotError>>> =
            (0..batch.len()).map(|_| None).collect();
        let writes = !batch_notes.is_empty() || batch.iter().any(|j| !j.event.is_query());
        if writes && !health.store_ok() && last_probe.is_none_or(|t| t.elapsed() >= PROBE_EVERY) {
            // A retry after space came back should not wait for the timer.
            probe(&slot, &health, clock.as_ref());
            last_probe = Some(Instant::now());
        }
        let refusing = !health.store_ok();
        let Some(store) = slot.get() else {
            let why = "the database is being opened again after a failed write";
            for job in batch {
                let _ = job.done.send(Err(BotError::Unavailable(why.into())));
            }
            for note in batch_notes {
                let _ = note.done.send(Err(BotError::Unavailable(why.into())));
            }
            health.set_busy(None);
            continue;
        };
        // Why the disk refused this batch, if it did.
        let mut failed: Option<String> = None;
        let mut wrote = false;
        let mut i = 0;
        while i < batch.len() {
            if batch[i].event.is_query() {
                // A bug in a query answers that query with an internal
                // error; the thread goes on.
                let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    #[cfg(test)]
                    tests::bug_in_query(&batch[i].event);
                    engine.query(&store, &batch[i].event, clock.now())
                }));
                results[i] = Some(match answer {
                    Ok(Ok(r)) => Ok(Outcome {
                        reply: Some(r),
                        accepted: None,
                    }),
                    Ok(Err(e)) => Err(refusal(e, "query failed")),
                    Err(panic) => Err(internal(
                        &crate::error::panic_message(panic.as_ref()),
                        "a bug while answering a query",
                    )),
                });
                i += 1;
                continue;
            }
            let end = (i..batch.len())
                .find(|&j| batch[j].event.is_query())
                .unwrap_or(batch.len());
            let events: Vec<&Event> = batch[i..end].iter().map(|j| &j.event).collect();
            if refusing || failed.is_some() {
                let why = failed.clone().unwrap_or_else(|| store_problem(&health));
                for r in results.iter_mut().take(end).skip(i) {
                    *r = Some(Err(BotError::Unavailable(why.clone())));
                }
                i = end;
                continue;
            }
            let outcome = apply(&store, &engine, clock.as_ref(), &events);
            #[cfg(test)]
            tests::slow_after_apply(&events);
            let outcome = match outcome {
                Ok(r) => r,
                Err(e) if e.is_storage() => {
                    // The disk, not one event: nothing more is tried.
                    failed = Some(e.to_string());
                    events
                        .iter()
                        .map(|_| Err(BotError::Unavailable(e.to_string())))
                        .collect()
                }
                Err(e) => {
                    // One bad event must not sink the others: retry one by one.
                    warn!(error = %e, "batch failed; applying its events one by one");
                    events
                        .iter()
                        .map(|ev| match apply(&store, &engine, clock.as_ref(), &[*ev]) {
                            Ok(mut r) => r.pop().unwrap_or(Err(BotError::Stopped)),
                            Err(e) if e.is_storage() => {
                                failed = Some(e.to_string());
                                Err(BotError::Unavailable(e.to_string()))
                            }
                            Err(e) => Err(refusal(EngineError::Store(e), "event failed")),
                        })
                        .collect()
                }
            };
            for (k, r) in outcome.into_iter().enumerate() {
                wrote |= r.is_ok();
                results[i + k] = Some(r);
            }
            i = end;
        }
        if !batch_notes.is_empty() && !refusing && failed.is_none() {
            for note in &batch_notes {
                if let Err(e) = store.adapter_put(&note.key, &note.value) {
                    failed = Some(e.to_string());
                    break;
                }
                wrote = true;
            }
        }
        if wrote && failed.is_none() {
            if let Err(e) = store.flush() {
                failed = Some(e.to_string());
            }
        }
        // The notes are durable with the flush, or not stored at all.
        let noted: Result<(), String> = match &failed {
            Some(why) => Err(why.clone()),
            None if refusing => Err(store_problem(&health)),
            None => Ok(()),
        };
        for note in batch_notes {
            let _ = note.done.send(noted.clone().map_err(BotError::Unavailable));
        }
        if let Some(why) = failed {
            // Nothing of this batch is stored: no answer says it is, no
            // effect of it is delivered (the marks stay), and the files are
            // opened again so that no reader sees it (see `StoreSlot`).
            error!(error = %why, events = batch.len(), "the disk refused a write: nothing of this batch was stored; the bot takes no writes until a test write succeeds, and reads go on from what is on disk");
            for r in results.iter_mut() {
                if matches!(r, Some(Ok(_))) {
                    *r = Some(Err(BotError::Unavailable(why.clone())));
                }
            }
            health.set_store(Some(why), chrono::Utc::now());
            drop(store);
            if let Err(e) = slot.reopen() {
                error!(error = %e, "cannot open the database again; reads and writes wait for it");
            }
            last_probe = Some(Instant::now());
        } else if wrote {
            for m in &marks {
                match store.last_seq(m.queue) {
                    Ok(seq) => {
                        if seq > *m.committed.borrow() {
                            m.committed.send_replace(seq);
                            m.wake.notify_one();
                        }
                    }
                    Err(e) => error!(error = %e, "cannot read an outbox counter"),
                }
            }
        }
        for (job, r) in batch.into_iter().zip(results) {
            let _ = job.done.send(r.unwrap_or(Err(BotError::Stopped)));
        }
        health.set_busy(None);
    }
}

/// Why the store refuses writes, in a few words.
pub(super) fn store_problem(health: &Health) -> String {
    health
        .store_problem()
        .unwrap_or_else(|| "the disk refused a write".into())
}

pub(super) fn apply(
    store: &Store,
    engine: &Engine,
    clock: &dyn Clock,
    events: &[&Event],
) -> Result<Vec<Result<Outcome, BotError>>, crate::error::StoreError> {
    let results = store.apply_batch(
        events,
        |view, ev| {
            #[cfg(test)]
            tests::bug_in_decide(ev);
            #[cfg(test)]
            tests::slow_in_decide(ev);
            // One span per event: what it is, who, where, and (once
            // decided) the tickets it changed, so that one ticket can be
            // followed through the log.
            // (Nothing of it is computed while the log leaves it out.)
            let span = if tracing::enabled!(tracing::Level::INFO) {
                let (person, channel, source) = ev.who_where();
                tracing::info_span!(
                    "event",
                    kind = ev.kind(),
                    person = person.as_deref(),
                    channel = channel.as_deref(),
                    source = source.as_deref(),
                    tickets = tracing::field::Empty,
                )
            } else {
                tracing::Span::none()
            };
            let _in = span.enter();
            let d = engine.decide(view, ev, clock.now())?;
            if !span.is_disabled() {
                let tickets: Vec<String> = d
                    .writes
                    .iter()
                    .filter_map(|w| match w {
                        crate::engine::Write::Ticket(t) => Some(t.id.to_string()),
                        _ => None,
                    })
                    .collect();
                if !tickets.is_empty() {
                    span.record("tickets", tickets.join(",").as_str());
                }
                tracing::info!(writes = d.writes.len(), "decided");
            }
            Ok((
                d.writes,
                Outcome {
                    reply: d.reply,
                    accepted: d.accepted,
                },
            ))
        },
        || clock.now(),
    )?;
    Ok(results
        .into_iter()
        .map(|r| r.map_err(|e| refusal(e, "event failed")))
        .collect())
}

/// What the person is told when the engine did not apply their event: their
/// mistake as written, or an internal error with the id the log has it under.
pub(super) fn refusal(e: EngineError, what: &str) -> BotError {
    match e {
        EngineError::Refused(u) => BotError::Refused(u),
        // Already logged, with its id, where it was caught.
        EngineError::Store(crate::error::StoreError::Panicked { id, .. }) => BotError::Internal(id),
        EngineError::Store(e) => internal(&e, what),
    }
}
