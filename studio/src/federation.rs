//! A view that spans nodes: [`Studio::follow`] reads another process's studio (each node of a
//! cluster can serve its own) and merges what it shows into this one's view, its tree paths,
//! agents and stuck keys named `NODE:...`, its calls and escalations numbered here. An
//! escalation of the other node answered here is answered there. A node whose studio cannot
//! be reached is shown `down`, with what it last showed, and is reconnected with backoff.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::error::AnswerError;
use crate::remote::{Remote, RemoteError, split_url};
use crate::studio::{Hub, Inner, Input, Studio, lock, now_ms};
use crate::view::{CallView, Delta, Frame, MemberView, View};

/// Escalations of followed nodes, by the id they have here: the node and their id there.
pub(crate) type RemoteEscalations = HashMap<u64, (String, u64)>;

/// First id given here to a followed node's call or escalation (far above local ones).
const REMOTE_IDS: u64 = 1 << 62;

impl Studio {
    /// Follows the studio of another process, the node `node`, at `url` (the address it
    /// printed, with its token, or its base with `token`): from now on this view shows its
    /// tree, agents, calls, escalations, stuck flags and timeline too, named `node:...`, and
    /// its state as a [member](crate::View::members). The connection is kept: when lost, the
    /// node is shown `down` and dialled again with backoff (100 ms doubling to 5 s), until
    /// this studio is dropped or [closed](Self::close_viewers).
    ///
    /// # Errors
    ///
    /// [`RemoteError::BadUrl`] without a token.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the follower is a task on it).
    pub fn follow(&self, node: impl Into<String>, url: &str, token: Option<&str>) -> Result<(), RemoteError> {
        let node = node.into();
        let (base, in_url) = split_url(url);
        let token = token
            .map(str::to_owned)
            .or(in_url)
            .ok_or_else(|| RemoteError::BadUrl(format!("{url} (no token)")))?;
        lock(&self.inner.followed).insert(node.clone(), (base.clone(), token.clone()));
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(follow_loop(weak, node, base, token));
        Ok(())
    }

    /// Answers an escalation of a followed node, on that node.
    pub(crate) async fn answer_remote(
        &self,
        node: &str,
        remote_id: u64,
        local_id: u64,
        text: &str,
    ) -> Result<(), AnswerError> {
        let Some((base, token)) = lock(&self.inner.followed).get(node).cloned() else {
            return Err(AnswerError::Unknown(local_id));
        };
        let sent = reqwest::Client::new()
            .post(format!("{base}api/escalations/{remote_id}/answer"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "text": text }))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| AnswerError::Remote(e.to_string()))?;
        match sent.status().as_u16() {
            200..=299 => Ok(()),
            404 => Err(AnswerError::Unknown(local_id)),
            410 => Err(AnswerError::AskerGone(local_id)),
            status => Err(AnswerError::Remote(format!("{node} answered {status}"))),
        }
    }
}

async fn follow_loop(inner: Weak<Inner>, node: String, base: String, token: String) {
    let mut backoff = Duration::from_millis(100);
    let member = |state: &str, error: Option<String>| MemberView {
        name: node.clone(),
        url: base.clone(),
        state: state.into(),
        error,
        since_ms: now_ms(),
    };
    let send = |input: Input| match inner.upgrade() {
        Some(inner) if !*inner.closed.borrow() => {
            inner.send(input);
            true
        }
        _ => false,
    };
    if !send(Input::Member(Box::new(member("connecting", None)))) {
        return;
    }
    loop {
        match Remote::connect(&base, Some(&token)).await {
            Ok(mut remote) => {
                backoff = Duration::from_millis(100);
                if !send(Input::Member(Box::new(member("live", None)))) {
                    return;
                }
                let error = loop {
                    match remote.next().await {
                        Ok(frame) => {
                            if !send(Input::Remote {
                                node: node.clone(),
                                frame: Box::new(frame),
                            }) {
                                return;
                            }
                        }
                        Err(e) => break e,
                    }
                };
                if !send(Input::Member(Box::new(member("down", Some(error.to_string()))))) {
                    return;
                }
            }
            Err(error) => {
                if !send(Input::Member(Box::new(member("down", Some(error.to_string()))))) {
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// What the hub keeps of a followed node.
#[derive(Default)]
pub(crate) struct Mirror {
    /// The node's view as it sent it.
    view: View,
    /// Its calls in flight: their ids there → here.
    calls: HashMap<u64, u64>,
    /// Its escalations waiting: their ids there → here.
    escalations: HashMap<u64, u64>,
}

impl Hub {
    pub(crate) fn member(&mut self, member: MemberView) {
        let changed = self
            .view
            .members
            .get(&member.name)
            .is_none_or(|m| m.state != member.state);
        if changed {
            let text = match &member.error {
                Some(error) => format!("{} ({error})", member.state),
                None => member.state.clone(),
            };
            self.timeline("member", &member.name, text);
            self.emit(Delta::Member(member));
        }
    }

    pub(crate) fn remote(&mut self, inner: &Inner, node: &str, frame: Frame) {
        match frame {
            Frame::Snapshot { view } => self.remote_snapshot(inner, node, *view),
            Frame::Delta { seq, delta } => {
                let mirror = self.mirrors.entry(node.to_owned()).or_default();
                if seq <= mirror.view.seq {
                    return;
                }
                mirror.view.apply(delta.clone());
                mirror.view.seq = seq;
                self.remote_delta(inner, node, delta);
            }
        }
    }

    /// A node's whole view: what it no longer shows leaves, the rest is shown as it is now.
    fn remote_snapshot(&mut self, inner: &Inner, node: &str, view: View) {
        let old = self.mirrors.remove(node).unwrap_or_default();
        // The ids given here to its calls and escalations still in flight carry over.
        let mut mirror = Mirror {
            calls: old.calls,
            escalations: old.escalations,
            ..Mirror::default()
        };
        for path in old.view.tree.keys() {
            if !view.tree.contains_key(path) {
                let removed = Delta::NodeRemoved { path: path.clone() };
                self.remote_delta_with(inner, node, &mut mirror, removed);
            }
        }
        // Calls, escalations and flags it no longer has ended there meanwhile.
        for (id, call) in &old.view.calls {
            if !view.calls.contains_key(id) {
                let mut ended = call.clone();
                ended.outcome = Some("unknown".into());
                self.remote_delta_with(inner, node, &mut mirror, Delta::CallEnded(ended));
            }
        }
        for id in old.view.escalations.keys() {
            if !view.escalations.contains_key(id) {
                self.remote_delta_with(inner, node, &mut mirror, Delta::EscalationClosed { id: *id });
            }
        }
        for key in old.view.stuck.keys() {
            if !view.stuck.contains_key(key) {
                self.remote_delta_with(inner, node, &mut mirror, Delta::Unstuck { key: key.clone() });
            }
        }
        let mut deltas: Vec<Delta> = Vec::new();
        deltas.extend(view.tree.values().cloned().map(Delta::Node));
        deltas.extend(view.agents.values().cloned().map(Delta::Agent));
        deltas.extend(
            view.calls
                .values()
                .filter(|c| !mirror.calls.contains_key(&c.id))
                .cloned()
                .map(Delta::CallStarted),
        );
        deltas.extend(
            view.escalations
                .values()
                .filter(|e| !mirror.escalations.contains_key(&e.id))
                .cloned()
                .map(Delta::Escalation),
        );
        deltas.extend(view.stuck.values().cloned().map(Delta::Stuck));
        for delta in deltas {
            self.remote_delta_with(inner, node, &mut mirror, delta);
        }
        mirror.view = view;
        self.mirrors.insert(node.to_owned(), mirror);
    }

    fn remote_delta(&mut self, inner: &Inner, node: &str, delta: Delta) {
        let mut mirror = self.mirrors.remove(node).unwrap_or_default();
        self.remote_delta_with(inner, node, &mut mirror, delta);
        self.mirrors.insert(node.to_owned(), mirror);
    }

    /// Shows one change of a followed node here, its names prefixed and its ids numbered here.
    fn remote_delta_with(&mut self, inner: &Inner, node: &str, mirror: &mut Mirror, delta: Delta) {
        let name = |s: &str| format!("{node}:{s}");
        let local = match delta {
            Delta::Node(mut n) => {
                n.path = name(&n.path);
                Delta::Node(n)
            }
            Delta::NodeRemoved { path } => Delta::NodeRemoved { path: name(&path) },
            Delta::Agent(mut a) => {
                a.name = name(&a.name);
                Delta::Agent(a)
            }
            Delta::CallStarted(call) => {
                let id = self.remote_id();
                mirror.calls.insert(call.id, id);
                Delta::CallStarted(self.local_call(node, call, id))
            }
            Delta::CallEnded(call) => {
                let id = mirror.calls.remove(&call.id).unwrap_or_else(|| self.remote_id());
                Delta::CallEnded(self.local_call(node, call, id))
            }
            Delta::Escalation(mut e) => {
                let id = self.remote_id();
                mirror.escalations.insert(e.id, id);
                lock(&inner.remote_escalations).insert(id, (node.to_owned(), e.id));
                e.id = id;
                e.origin = name(&e.origin);
                e.agent = e.agent.map(|a| name(&a));
                Delta::Escalation(e)
            }
            Delta::EscalationClosed { id } => {
                let Some(local) = mirror.escalations.remove(&id) else {
                    return;
                };
                lock(&inner.remote_escalations).remove(&local);
                Delta::EscalationClosed { id: local }
            }
            Delta::Timeline(mut t) => {
                t.subject = name(&t.subject);
                Delta::Timeline(t)
            }
            Delta::Stuck(mut s) => {
                s.key = name(&s.key);
                s.agent = s.agent.map(|a| name(&a));
                Delta::Stuck(s)
            }
            Delta::Unstuck { key } => Delta::Unstuck { key: name(&key) },
            // Its own drops and members are its business.
            Delta::Dropped { .. } | Delta::Member(_) => return,
        };
        self.emit(local);
    }

    fn local_call(&self, node: &str, mut call: CallView, id: u64) -> CallView {
        call.id = id;
        call.agent = call.agent.map(|a| format!("{node}:{a}"));
        call
    }

    fn remote_id(&mut self) -> u64 {
        self.next_remote_id += 1;
        REMOTE_IDS + self.next_remote_id
    }
}
