import { beforeEach, describe, expect, it } from "vitest";
import { Api } from "../api";
import { FakeGateway, FakeSocket } from "../test/fakes";
import type { Call, Conversation, SignalEvent } from "../types";
import { CallController, type MediaDeps } from "./calls";

const alice = { userId: "alice", displayName: "Alice" };
const bob = { userId: "bob", displayName: "Bob" };

/** Records what the controller asks of a peer connection; no media flows in jsdom. */
class FakePeer {
  static all: FakePeer[] = [];
  connectionState: RTCPeerConnectionState = "new";
  signalingState: RTCSignalingState = "stable";
  remote?: RTCSessionDescriptionInit;
  local?: RTCSessionDescriptionInit;
  candidates: RTCIceCandidateInit[] = [];
  tracks = 0;
  closed = false;
  onicecandidate: ((e: { candidate: { toJSON(): RTCIceCandidateInit } | null }) => void) | null = null;
  ontrack: ((e: unknown) => void) | null = null;
  onconnectionstatechange: (() => void) | null = null;
  constructor() {
    FakePeer.all.push(this);
  }
  addTrack() {
    this.tracks++;
  }
  async createOffer() {
    return { type: "offer", sdp: "offer-sdp" } as RTCSessionDescriptionInit;
  }
  async createAnswer() {
    return { type: "answer", sdp: "answer-sdp" } as RTCSessionDescriptionInit;
  }
  async setLocalDescription(d: RTCSessionDescriptionInit) {
    this.local = d;
    if (d.type === "offer") this.signalingState = "have-local-offer";
  }
  async setRemoteDescription(d: RTCSessionDescriptionInit) {
    this.remote = d;
    this.signalingState = "stable";
  }
  async addIceCandidate(c: RTCIceCandidateInit) {
    if (!this.remote) throw new Error("no remote description");
    this.candidates.push(c);
  }
  close() {
    this.closed = true;
  }
  connect() {
    this.connectionState = "connected";
    this.onconnectionstatechange?.();
  }
}

function fakeStream() {
  const track = { enabled: true, stopped: false, kind: "audio", stop() { this.stopped = true; } };
  return { getTracks: () => [track], getAudioTracks: () => [track], getVideoTracks: () => [], track } as unknown as MediaStream & {
    track: typeof track;
  };
}

const media: MediaDeps = {
  getUserMedia: async () => fakeStream(),
  createPeer: () => new FakePeer() as unknown as RTCPeerConnection,
};

let gw: FakeGateway;
let conversation: Conversation;
const tick = () => new Promise((r) => setTimeout(r, 0));

function controller(me: typeof alice) {
  const socket = new FakeSocket();
  const c = new CallController(new Api("", gw.fetch), me, media);
  c.attach(socket as never);
  return { c, socket };
}

beforeEach(() => {
  gw = new FakeGateway();
  conversation = gw.addConversation([alice, bob]);
  FakePeer.all = [];
});

describe("calls", () => {
  it("places a call: creates it, offers to the other member, applies the answer and queued candidates", async () => {
    const { c, socket } = controller(alice);
    await c.start(conversation, "video");
    const call = gw.calls[0];
    expect(call.participants.map((p) => p.userId)).toEqual(["alice", "bob"]);
    expect(c.store.get().active?.phase).toBe("ringing");
    const offer = gw.requests.find((r) => r.path.endsWith("/signals/offer"));
    expect(offer?.body).toEqual({ senderId: "alice", targetId: "bob", payload: { type: "offer", sdp: "offer-sdp" } });

    // Our own call:created is not a ring.
    socket.deliver("call:created", call);
    expect(c.store.get().incoming).toBeUndefined();

    const sig = (kind: SignalEvent["kind"], payload: Record<string, unknown>): SignalEvent => ({
      callId: call.id, kind, senderId: "bob", targetId: "alice", payload, createdAt: new Date().toISOString(),
    });
    // A candidate that overtakes the answer waits for it.
    socket.deliver("call:signal", sig("ice", { candidate: "c1" }));
    await tick();
    const pc = FakePeer.all[0];
    expect(pc.candidates).toEqual([]);
    socket.deliver("call:signal", sig("answer", { type: "answer", sdp: "answer-sdp" }));
    await tick();
    await tick();
    expect(pc.remote?.sdp).toBe("answer-sdp");
    expect(pc.candidates).toEqual([{ candidate: "c1" }]);

    socket.deliver("call:updated", { ...call, status: "in_progress" });
    expect(c.store.get().active?.phase).toBe("connecting");
    pc.connect();
    expect(c.store.get().active?.phase).toBe("connected");
    expect(c.store.get().active?.peers.bob).toBe("connected");

    await c.hangUp();
    expect(pc.closed).toBe(true);
    expect(gw.calls[0].status).toBe("ended");
    expect(c.store.get().active?.endedReason).toBe("You hung up.");
  });

  it("rings the callee, who answers the offer kept while ringing", async () => {
    const { c, socket } = controller(bob);
    const call: Call = { id: "call-1", conversationId: conversation.id, type: "audio", status: "ringing", startedAt: new Date().toISOString(), participants: [alice, bob] };
    gw.calls.push(call);
    socket.deliver("call:created", call);
    expect(c.store.get().incoming?.id).toBe("call-1");
    socket.deliver("call:signal", { callId: "call-1", kind: "offer", senderId: "alice", targetId: "bob", payload: { type: "offer", sdp: "o" }, createdAt: "1" });
    socket.deliver("call:signal", { callId: "call-1", kind: "ice", senderId: "alice", targetId: "bob", payload: { candidate: "x" }, createdAt: "2" });
    await c.accept();
    expect(gw.calls[0].status).toBe("in_progress");
    const pc = FakePeer.all[0];
    expect(pc.remote?.sdp).toBe("o");
    expect(pc.candidates).toEqual([{ candidate: "x" }]);
    const answer = gw.requests.find((r) => r.path.endsWith("/signals/answer"));
    expect(answer?.body).toEqual({ senderId: "bob", targetId: "alice", payload: { type: "answer", sdp: "answer-sdp" } });

    // The caller hangs up: the call ends here too.
    socket.deliver("call:updated", { ...call, status: "ended" });
    expect(c.store.get().active?.phase).toBe("ended");
    expect(c.store.get().active?.endedReason).toBe("The call has ended.");
    expect(pc.closed).toBe(true);
  });

  it("declines, and stops ringing when the call ends elsewhere", async () => {
    const { c, socket } = controller(bob);
    const call: Call = { id: "call-2", conversationId: conversation.id, type: "video", status: "ringing", startedAt: "", participants: [alice, bob] };
    gw.calls.push(call);
    socket.deliver("call:created", call);
    await c.decline();
    expect(gw.calls[0].status).toBe("declined");
    expect(c.store.get().incoming).toBeUndefined();

    socket.deliver("call:created", { ...call, id: "call-3", status: "ringing" });
    expect(c.store.get().incoming?.id).toBe("call-3");
    socket.deliver("call:updated", { ...call, id: "call-3", status: "missed" });
    expect(c.store.get().incoming).toBeUndefined();
  });

  it("reports a missing camera without placing the call", async () => {
    const c = new CallController(new Api("", gw.fetch), alice, {
      ...media,
      getUserMedia: async () => {
        throw new Error("Permission denied");
      },
    });
    await c.start(conversation, "video");
    expect(c.store.get().active).toBeUndefined();
    expect(c.store.get().error).toMatch(/camera or microphone is not available/);
    expect(gw.calls).toHaveLength(0);
  });
});
