import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./components/App";
import { loadConfig } from "./config";
import "./styles.css";

const root = createRoot(document.getElementById("root") as HTMLElement);

loadConfig().then(
  (config) =>
    root.render(
      <StrictMode>
        <App config={config} />
      </StrictMode>,
    ),
  (e: Error) =>
    root.render(
      <main className="fatal" role="alert">
        <h1>Chat could not start</h1>
        <p>{e.message}</p>
        <button type="button" onClick={() => location.reload()}>
          Try again
        </button>
      </main>,
    ),
);
