// Audio and video calls: placing, ringing, answering and ending them through the call
// service, and the WebRTC media between participants. Session descriptions and ICE
// candidates travel through the contract's REST signal endpoints and arrive as
// `call:signal` events. The caller offers to every other participant when it places the
// call; a participant keeps the offer while its phone rings and answers it on accepting
// (or reads it back with GET .../signals/offer when it missed the event).
import { Api, ApiError, describeError } from "../api";
import type { ChatSocket } from "../realtime";
import { FINAL_CALL_STATUSES } from "../types";
import type { Call, CallType, Conversation, SignalEvent, SignalKind, StoredSignal, User } from "../types";
import { Store } from "../state/store";

export type CallPhase = "starting" | "ringing" | "connecting" | "connected" | "ended";

export interface ActiveCall {
  call: Call;
  role: "caller" | "callee";
  phase: CallPhase;
  local?: MediaStream;
  /** Remote media by participant. */
  remote: Record<string, MediaStream>;
  /** Each peer connection's `connectionState`, by participant. */
  peers: Record<string, RTCPeerConnectionState>;
  micOn: boolean;
  cameraOn: boolean;
  endedReason?: string;
}

export interface CallState {
  active?: ActiveCall;
  incoming?: Call;
  /** Calls per conversation, oldest first, as GET /calls/conversation/:id gives them. */
  history: Record<string, Call[]>;
  error?: string;
}

interface Peer {
  pc: RTCPeerConnection;
  remoteSet: boolean;
  pendingIce: RTCIceCandidateInit[];
}

export interface MediaDeps {
  getUserMedia(c: MediaStreamConstraints): Promise<MediaStream>;
  createPeer(config: RTCConfiguration): RTCPeerConnection;
}

const browserMedia: MediaDeps = {
  getUserMedia: (c) => navigator.mediaDevices.getUserMedia(c),
  createPeer: (config) => new RTCPeerConnection(config),
};

/** How long the "call ended" card stays before the call view closes by itself. */
const ENDED_LINGER_MS = 3000;

export function endedReason(status: Call["status"], role: ActiveCall["role"]): string {
  switch (status) {
    case "declined":
      return role === "caller" ? "The call was declined." : "You declined the call.";
    case "missed":
      return "No answer.";
    default:
      return "The call has ended.";
  }
}

function upsertCall(list: Call[] | undefined, call: Call): Call[] {
  const rest = (list ?? []).filter((c) => c.id !== call.id);
  return [...rest, call].sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
}

export class CallController {
  readonly store = new Store<CallState>({ history: {} });
  private peers = new Map<string, Peer>();
  /** Signals that came for a call before this user answered it. */
  private early = new Map<string, SignalEvent[]>();
  /** The conversation a call is being placed in (its own `call:created` is not a ring). */
  private placing: string | null = null;
  private lingerTimer?: ReturnType<typeof setTimeout>;

  constructor(
    private readonly api: Api,
    private readonly me: User,
    private readonly media: MediaDeps = browserMedia,
    private readonly rtcConfig: RTCConfiguration = { iceServers: [] },
  ) {}

  attach(socket: ChatSocket) {
    socket.on("call:created", (c) => this.onCallEvent(c, true));
    socket.on("call:updated", (c) => this.onCallEvent(c, false));
    socket.on("call:signal", (s) => void this.onSignal(s));
  }

  detach() {
    this.teardown();
    clearTimeout(this.lingerTimer);
  }

  async loadHistory(conversationId: string) {
    try {
      const calls = await this.api.calls(conversationId);
      this.store.set((s) => ({ ...s, history: { ...s.history, [conversationId]: calls } }));
    } catch (e) {
      this.store.set({ error: describeError(e) });
    }
  }

  dismissError() {
    this.store.set({ error: undefined });
  }

  private setActive(f: (a: ActiveCall) => ActiveCall) {
    this.store.set((s) => (s.active ? { ...s, active: f(s.active) } : s));
  }

  private remember(call: Call) {
    this.store.set((s) => ({
      ...s,
      history: { ...s.history, [call.conversationId]: upsertCall(s.history[call.conversationId], call) },
    }));
  }

  private async localMedia(type: CallType): Promise<MediaStream> {
    try {
      return await this.media.getUserMedia({ audio: true, video: type === "video" });
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new Error(`Your ${type === "video" ? "camera or microphone" : "microphone"} is not available (${why}).`);
    }
  }

  /** Places a call to every other member of the conversation. */
  /** In a call (the "call ended" card does not count). */
  get inCall(): boolean {
    const a = this.store.get().active;
    return Boolean(a && a.phase !== "ended");
  }

  async start(conversation: Conversation, type: CallType) {
    if (this.inCall) return;
    clearTimeout(this.lingerTimer);
    const others = conversation.members.filter((m) => m.userId !== this.me.userId);
    const participants = [this.me, ...others];
    const placeholder: Call = {
      id: "",
      conversationId: conversation.id,
      type,
      status: "ringing",
      startedAt: new Date().toISOString(),
      participants,
    };
    this.store.set({
      error: undefined,
      active: { call: placeholder, role: "caller", phase: "starting", remote: {}, peers: {}, micOn: true, cameraOn: type === "video" },
    });
    this.placing = conversation.id;
    let local: MediaStream | undefined;
    try {
      local = await this.localMedia(type);
      this.setActive((a) => ({ ...a, local }));
      const call = await this.api.createCall(conversation.id, type, participants);
      this.remember(call);
      this.setActive((a) => ({ ...a, call, phase: a.phase === "starting" ? "ringing" : a.phase }));
      await Promise.all(others.map((o) => this.offerTo(call, o.userId, local as MediaStream)));
    } catch (e) {
      local?.getTracks().forEach((t) => t.stop());
      this.closePeers();
      this.store.set({ active: undefined, error: describeError(e) });
    } finally {
      this.placing = null;
    }
  }

  async accept() {
    const call = this.store.get().incoming;
    if (!call || this.inCall) return;
    clearTimeout(this.lingerTimer);
    this.store.set({
      incoming: undefined,
      error: undefined,
      active: { call, role: "callee", phase: "connecting", remote: {}, peers: {}, micOn: true, cameraOn: call.type === "video" },
    });
    try {
      const local = await this.localMedia(call.type);
      this.setActive((a) => ({ ...a, local }));
      const updated = await this.api.setCallStatus(call.id, "in_progress");
      this.remember(updated);
      this.setActive((a) => ({ ...a, call: updated }));
      // Signals that came by socket while ringing, then any that did not (a reload, a
      // lost event): answering the same offer twice is avoided by keying peers by sender.
      const stored = await this.storedSignals(call.id);
      const early = this.early.get(call.id) ?? [];
      this.early.delete(call.id);
      const seen = new Set<string>();
      const all = [...stored, ...early].filter((s) => {
        const key = `${s.kind} ${s.senderId} ${JSON.stringify(s.payload)}`;
        return !seen.has(key) && (seen.add(key), true);
      });
      for (const s of all.sort((a, b) => (String(a.createdAt) < String(b.createdAt) ? -1 : 1))) {
        await this.applySignal(s);
      }
    } catch (e) {
      this.store.set({ error: describeError(e) });
      await this.hangUp();
    }
  }

  async decline() {
    const call = this.store.get().incoming;
    if (!call) return;
    this.store.set({ incoming: undefined });
    this.early.delete(call.id);
    try {
      this.remember(await this.api.setCallStatus(call.id, "declined"));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 409)) this.store.set({ error: describeError(e) });
    }
  }

  async hangUp() {
    const active = this.store.get().active;
    if (!active) return;
    this.finish(active.role === "caller" && active.phase === "ringing" ? "You cancelled the call." : "You hung up.");
    if (!active.call.id) return;
    try {
      this.remember(await this.api.setCallStatus(active.call.id, "ended"));
    } catch (e) {
      // Already final (the other side hung up first): nothing to do.
      if (!(e instanceof ApiError && e.status === 409)) this.store.set({ error: describeError(e) });
    }
  }

  toggleMic() {
    this.setActive((a) => {
      const on = !a.micOn;
      a.local?.getAudioTracks().forEach((t) => (t.enabled = on));
      return { ...a, micOn: on };
    });
  }

  toggleCamera() {
    this.setActive((a) => {
      const on = !a.cameraOn;
      a.local?.getVideoTracks().forEach((t) => (t.enabled = on));
      return { ...a, cameraOn: on };
    });
  }

  closeEnded() {
    clearTimeout(this.lingerTimer);
    this.store.set((s) => (s.active?.phase === "ended" ? { ...s, active: undefined } : s));
  }

  private async storedSignals(callId: string): Promise<SignalEvent[]> {
    const kinds: SignalKind[] = ["offer", "ice"];
    const lists = await Promise.all(kinds.map((k) => this.api.signals(callId, k)));
    return lists.flatMap((list, i) =>
      list.map((s: StoredSignal) => ({ ...s, callId, kind: kinds[i] })),
    );
  }

  private onCallEvent(call: Call, created: boolean) {
    const mine = call.participants.some((p) => p.userId === this.me.userId);
    if (!mine) return;
    this.remember(call);
    const s = this.store.get();
    if (s.active && (s.active.call.id === call.id || (!s.active.call.id && this.placing === call.conversationId))) {
      if (s.active.phase === "ended") return;
      if (s.active.call.id === call.id) this.setActive((a) => ({ ...a, call }));
      if (FINAL_CALL_STATUSES.includes(call.status)) {
        this.finish(endedReason(call.status, s.active.role));
      } else if (call.status === "in_progress" && s.active.phase === "ringing") {
        this.setActive((a) => ({ ...a, phase: "connecting" }));
      }
      return;
    }
    if (s.incoming?.id === call.id) {
      // Answered on another device, or over: stop ringing here.
      if (call.status !== "ringing") this.store.set({ incoming: undefined });
      return;
    }
    const placedHere = this.placing === call.conversationId;
    const placedByMe = call.participants[0]?.userId === this.me.userId;
    if (created && call.status === "ringing" && !placedHere && !placedByMe && !this.inCall) {
      this.store.set({ incoming: call });
    }
  }

  private async onSignal(s: SignalEvent) {
    if (s.senderId === this.me.userId) return;
    if (s.targetId && s.targetId !== this.me.userId) return;
    const active = this.store.get().active;
    if (active?.call.id === s.callId && active.phase !== "ended") {
      await this.applySignal(s);
    } else if (this.store.get().incoming?.id === s.callId || !this.inCall) {
      // Not answered yet (or the call:created event is still on its way).
      const list = this.early.get(s.callId) ?? [];
      if (list.length < 200) list.push(s);
      this.early.set(s.callId, list);
    }
  }

  private async applySignal(s: SignalEvent) {
    if (s.senderId === this.me.userId) return;
    if (s.targetId && s.targetId !== this.me.userId) return;
    const active = this.store.get().active;
    if (!active || active.call.id !== s.callId) return;
    try {
      if (s.kind === "offer") {
        if (this.peers.has(s.senderId)) return; // the same offer by socket and by GET
        const peer = this.newPeer(active.call, s.senderId, active.local);
        await peer.pc.setRemoteDescription(description(s.payload));
        await this.flushIce(peer);
        const answer = await peer.pc.createAnswer();
        await peer.pc.setLocalDescription(answer);
        await this.signal(active.call.id, "answer", { type: answer.type, sdp: answer.sdp }, s.senderId);
      } else if (s.kind === "answer") {
        const peer = this.peers.get(s.senderId);
        if (!peer || peer.remoteSet || peer.pc.signalingState !== "have-local-offer") return;
        await peer.pc.setRemoteDescription(description(s.payload));
        await this.flushIce(peer);
      } else {
        const peer = this.peers.get(s.senderId);
        const cand = s.payload as RTCIceCandidateInit;
        if (!peer) {
          // Candidates can overtake the offer; keep them with the offer's sender.
          const list = this.early.get(s.callId) ?? [];
          list.push(s);
          this.early.set(s.callId, list);
        } else if (peer.remoteSet) {
          await peer.pc.addIceCandidate(cand);
        } else {
          peer.pendingIce.push(cand);
        }
      }
    } catch (e) {
      this.store.set({ error: `Call setup failed: ${describeError(e)}` });
    }
  }

  private async flushIce(peer: Peer) {
    peer.remoteSet = true;
    const queued = peer.pendingIce.splice(0);
    const callId = this.store.get().active?.call.id;
    // Candidates parked before the peer existed.
    const early = callId ? this.early.get(callId) : undefined;
    if (early) {
      const sender = [...this.peers.entries()].find(([, p]) => p === peer)?.[0];
      const mineNow = early.filter((x) => x.kind === "ice" && x.senderId === sender);
      this.early.set(callId as string, early.filter((x) => !mineNow.includes(x)));
      queued.push(...mineNow.map((x) => x.payload as RTCIceCandidateInit));
    }
    for (const c of queued) {
      try {
        await peer.pc.addIceCandidate(c);
      } catch {
        // A candidate of a different generation: harmless to skip.
      }
    }
  }

  private async offerTo(call: Call, userId: string, local: MediaStream) {
    const peer = this.newPeer(call, userId, local);
    const offer = await peer.pc.createOffer();
    await peer.pc.setLocalDescription(offer);
    await this.signal(call.id, "offer", { type: offer.type, sdp: offer.sdp }, userId);
  }

  private newPeer(call: Call, userId: string, local: MediaStream | undefined): Peer {
    const pc = this.media.createPeer(this.rtcConfig);
    const peer: Peer = { pc, remoteSet: false, pendingIce: [] };
    this.peers.set(userId, peer);
    local?.getTracks().forEach((t) => pc.addTrack(t, local));
    pc.onicecandidate = (ev) => {
      // Spread: RTCIceCandidateInit is an interface, not the plain object the contract types.
      if (ev.candidate) void this.signal(call.id, "ice", { ...ev.candidate.toJSON() }, userId);
    };
    pc.ontrack = (ev) => {
      const stream = ev.streams[0] ?? new MediaStream([ev.track]);
      this.setActive((a) => ({ ...a, remote: { ...a.remote, [userId]: stream } }));
    };
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState;
      this.setActive((a) => {
        if (a.call.id !== call.id || a.phase === "ended") return a;
        const peers = { ...a.peers, [userId]: state };
        const any = Object.values(peers).some((p) => p === "connected");
        const phase: CallPhase = any ? "connected" : a.phase === "connected" ? "connecting" : a.phase;
        return { ...a, peers, phase };
      });
    };
    this.setActive((a) => ({ ...a, peers: { ...a.peers, [userId]: pc.connectionState } }));
    return peer;
  }

  private async signal(callId: string, kind: SignalKind, payload: Record<string, unknown>, targetId: string) {
    try {
      await this.api.sendSignal(callId, kind, this.me.userId, payload, targetId);
    } catch (e) {
      // 409: the call is over; the status event tears the call down.
      if (!(e instanceof ApiError && e.status === 409)) throw e;
    }
  }

  private closePeers() {
    for (const p of this.peers.values()) p.pc.close();
    this.peers.clear();
  }

  private teardown() {
    this.closePeers();
    this.store.get().active?.local?.getTracks().forEach((t) => t.stop());
  }

  /** Stops media and shows why the call ended, briefly. */
  private finish(reason: string) {
    this.teardown();
    this.setActive((a) => ({ ...a, phase: "ended", endedReason: reason, local: undefined, remote: {} }));
    clearTimeout(this.lingerTimer);
    this.lingerTimer = setTimeout(() => this.closeEnded(), ENDED_LINGER_MS);
  }
}

/**
 * An offer's or answer's session description. The contract types a signal's payload only as
 * an object; offers and answers carry `{type, sdp}` (what `offerTo` and the answer send).
 */
function description(payload: Record<string, unknown>): RTCSessionDescriptionInit {
  return { type: payload.type as RTCSdpType, sdp: typeof payload.sdp === "string" ? payload.sdp : undefined };
}
