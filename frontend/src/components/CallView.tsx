// The call in progress: the other participants' video (or audio), your own picture, the
// microphone and camera switches, and hang up. The state of each peer connection is shown
// (and carried in data-peer-state) so the user sees when media actually flows.
import { useEffect, useRef } from "react";
import type { CallController, CallPhase } from "../call/calls";
import { useStore } from "../state/store";

const PHASE: Record<CallPhase, string> = {
  starting: "Starting the call…",
  ringing: "Ringing…",
  connecting: "Connecting…",
  connected: "Connected",
  ended: "Call ended",
};

function Media({ stream, muted, video, label }: { stream: MediaStream; muted?: boolean; video: boolean; label: string }) {
  const ref = useRef<HTMLVideoElement & HTMLAudioElement>(null);
  useEffect(() => {
    if (ref.current && ref.current.srcObject !== stream) ref.current.srcObject = stream;
  }, [stream]);
  return video ? (
    <video ref={ref} autoPlay playsInline muted={muted} aria-label={label} />
  ) : (
    <audio ref={ref} autoPlay muted={muted} aria-label={label} />
  );
}

export function CallView({ calls, me }: { calls: CallController; me: string }) {
  const { active, error } = useStore(calls.store);
  const hangUp = useRef<HTMLButtonElement>(null);
  const phase = active?.phase;
  useEffect(() => {
    if (phase === "ringing" || phase === "connecting") hangUp.current?.focus();
  }, [phase]);

  if (!active) {
    return error ? (
      <div className="toast" role="alert">
        <span>{error}</span>
        <button type="button" onClick={() => calls.dismissError()} aria-label="Dismiss">
          ×
        </button>
      </div>
    ) : null;
  }
  const video = active.call.type === "video";
  const others = active.call.participants.filter((p) => p.userId !== me);
  const ended = active.phase === "ended";
  return (
    <section className="call" aria-label={`${video ? "Video" : "Audio"} call`} data-call-phase={active.phase}>
      <p className="call-status" role="status" aria-live="assertive">
        {ended ? active.endedReason ?? PHASE.ended : PHASE[active.phase]}
        {!ended && others.length > 0 && ` — ${others.map((o) => o.displayName).join(", ")}`}
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="stage">
        {others.map((o) => {
          const stream = active.remote[o.userId];
          const state = active.peers[o.userId];
          return (
            <figure key={o.userId} className="remote" data-peer={o.userId} data-peer-state={state ?? "none"}>
              {stream ? (
                <Media stream={stream} video={video} label={`${o.displayName}'s ${video ? "video" : "audio"}`} />
              ) : (
                <div className="placeholder" aria-hidden="true">
                  {o.displayName.slice(0, 1).toUpperCase()}
                </div>
              )}
              <figcaption>
                {o.displayName}
                {state && state !== "new" ? ` (${state})` : ""}
              </figcaption>
            </figure>
          );
        })}
        {active.local && video && (
          <figure className="local">
            <Media stream={active.local} muted video label="Your camera" />
            <figcaption>You{active.cameraOn ? "" : " (camera off)"}</figcaption>
          </figure>
        )}
      </div>
      <div className="call-controls">
        {ended ? (
          <button type="button" onClick={() => calls.closeEnded()}>
            Close
          </button>
        ) : (
          <>
            <button type="button" aria-pressed={!active.micOn} onClick={() => calls.toggleMic()}>
              {active.micOn ? "Mute microphone" : "Unmute microphone"}
            </button>
            {video && (
              <button type="button" aria-pressed={!active.cameraOn} onClick={() => calls.toggleCamera()}>
                {active.cameraOn ? "Turn camera off" : "Turn camera on"}
              </button>
            )}
            <button type="button" ref={hangUp} className="danger" onClick={() => void calls.hangUp()}>
              Hang up
            </button>
          </>
        )}
      </div>
    </section>
  );
}
