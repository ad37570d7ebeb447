/**
 * pi-mesh: presence, messages and path reservations for Pi (installed by `pi-mesh install pi`).
 *
 * This extension only translates.  Every decision is made by the Python sidecar
 * (`pi-mesh serve`, one per session, JSON lines on its stdin/stdout):
 *
 *  - session_start: spawn the sidecar, `hello` (join the mesh, telling it Pi's tool names), register every
 *    tool it lists, and drop from Pi's active tools those the core says are denied to this agent; Pi's
 *    start-up is held for hello at most START_HOLD_MS (2 s): a slower sidecar joins in the background, and
 *    until it has answered, guarded calls fail closed at once (never waiting for it);
 *  - a mesh tool's execute asks `call_tool`; Pi's abort signal abandons the request (its late answer is
 *    dropped) and the tool fails with "Operation aborted", as Pi's own tools do;
 *  - tool_call: ask `pre_tool_call`; a block comes back with the holder and the reason; an allow may carry
 *    the input to run instead (a bash command wrapped in the sandbox), put into the mutable `event.input`;
 *  - inbox messages pushed by the sidecar enter the session (urgent: steer, else followUp),
 *    and are acked once they have reached the model's context (message_end);
 *  - session_shutdown: `leave`, close the sidecar's stdin, kill it if it lingers.
 *
 * Fail closed: when the sidecar is gone or silent for `sidecar_timeout`, the calls of the tools the core
 * named at hello (guarded or denied; before hello answers, Pi's edit, write and bash) are blocked with
 * the reason (unless hooks.toml sets on_store_error = "allow").
 * Nothing here keeps Pi alive: the child process and its pipes are unref'd; the only ref'd timers are
 * those of requests in flight (cleared by the answer), so an awaited request is never abandoned by Node.
 */
import type { ExtensionAPI, ToolDefinition } from "@mariozechner/pi-coding-agent";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";

const CUSTOM_TYPE = "pi-mesh";
const HELLO_TIMEOUT_MS = 30_000;
// session_start holds Pi's start-up at most this long for hello; a slower sidecar joins in the background.
const START_HOLD_MS = 2_000;
const DEFAULT_TIMEOUT_MS = 5_000;
// Until the sidecar has answered `hello` the configuration is unknown: Pi's own writing tools fail closed.
const WRITERS_BEFORE_HELLO = ["edit", "write", "bash"];

/** A JSON value from the sidecar, read field by field with {@link field} / {@link str}. */
type Json = unknown;
type JsonObject = { [key: string]: Json };

function obj(v: Json): JsonObject {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as JsonObject) : {};
}

function str(v: Json): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function list(v: Json): Json[] {
  return Array.isArray(v) ? v : [];
}

/** The answer to `hello`: who we are and what the core decided for this agent. */
interface Hello {
  agent: string;
  unread: number;
  sidecar_timeout?: number;
  fail_closed?: string[];
  hidden?: string[];
  on_store_error?: string;
  tools?: Json[];
  backlog?: Json[];
  notices?: string[];
}

/** A tool the sidecar lists: Pi's ToolDefinition fields it provides, its parameters a JSON Schema. */
type ToolParams = ToolDefinition["parameters"];

/** A Node stream that may be unref'd (sockets and pipes are; TypeScript's stream types do not say so). */
type Unrefable = { unref?: () => void } | null | undefined;

class Aborted extends Error {
  constructor() {
    super("Operation aborted"); // Pi's own tools reject with this message when their signal fires
  }
}

interface Launch {
  command: string;
  args: string[];
  env: Record<string, string>;
  how: string;
}

function here(): string {
  // jiti provides __dirname; fall back to import.meta for a native ESM loader.
  if (typeof __dirname === "string") return __dirname;
  return dirname(new URL(import.meta.url).pathname);
}

/** How to start `pi-mesh serve`: $PI_MESH_BIN, else the interpreter recorded at install time, else PATH. */
export function sidecarLaunch(): Launch {
  const bin = process.env.PI_MESH_BIN;
  if (bin) return { command: bin, args: ["serve"], env: {}, how: `PI_MESH_BIN=${bin}` };
  const recorded = join(here(), "pi-mesh.json");
  if (existsSync(recorded)) {
    try {
      const info = JSON.parse(readFileSync(recorded, "utf8"));
      if (typeof info.python === "string" && info.python) {
        const env: Record<string, string> = {};
        if (typeof info.pythonpath === "string" && info.pythonpath) {
          env.PYTHONPATH = info.pythonpath + (process.env.PYTHONPATH ? ":" + process.env.PYTHONPATH : "");
        }
        return { command: info.python, args: ["-m", "pi_mesh_plugin", "serve"], env, how: `${info.python} (${recorded})` };
      }
    } catch {
      /* fall through to PATH */
    }
  }
  return { command: "pi-mesh", args: ["serve"], env: {}, how: "pi-mesh on PATH" };
}

function oneLine(text: unknown): string {
  return String(text).split(/\s+/).join(" ").trim();
}

/** Pi's own path normalisation for its file tools: strip a leading "@", unify odd spaces, expand "~". */
function piPath(p: string): string {
  let s = p.startsWith("@") ? p.slice(1) : p;
  s = s.replace(/[\u00A0\u2000-\u200A\u202F\u205F\u3000]/g, " ");
  if (s === "~") return homedir();
  if (s.startsWith("~/")) return homedir() + s.slice(1);
  return s;
}

class Sidecar {
  child: ChildProcess | null = null;
  dead: string | null = null;
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private stderrTail: string[] = [];
  onEvent: (event: Json) => void = () => {};

  start(cwd: string): void {
    const launch = sidecarLaunch();
    let child: ChildProcess;
    try {
      child = spawn(launch.command, launch.args, {
        cwd,
        env: { ...process.env, ...launch.env },
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch (e) {
      this.dead = `the pi-mesh sidecar could not be started (${launch.how}): ${oneLine((e as Error).message)}`;
      return;
    }
    this.child = child;
    child.on("error", (e) => this.fail(`the pi-mesh sidecar could not be started (${launch.how}): ${oneLine(e.message)}`));
    child.on("exit", (code, signal) => {
      const why = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const tail = this.stderrTail.length ? `: ${this.stderrTail[this.stderrTail.length - 1]}` : "";
      this.fail(`the pi-mesh sidecar (pid ${child.pid}) ${why}${tail}`);
    });
    child.stdin!.on("error", () => {}); // EPIPE after the child died: reported through "exit"
    createInterface({ input: child.stdout! }).on("line", (line) => this.receive(line));
    createInterface({ input: child.stderr! }).on("line", (line) => {
      this.stderrTail.push(oneLine(line).slice(0, 300));
      if (this.stderrTail.length > 5) this.stderrTail.shift();
    });
    // Never keep Pi alive for the sidecar's sake.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr] as Unrefable[]) s?.unref?.();
  }

  private fail(reason: string): void {
    if (this.dead === null) this.dead = reason;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error(this.dead));
      this.pending.delete(id);
    }
  }

  private receive(line: string): void {
    let msg: JsonObject;
    try {
      msg = obj(JSON.parse(line));
    } catch {
      return; // not ours
    }
    if (typeof msg.event === "string") {
      try {
        this.onEvent(msg);
      } catch {
        /* an event handler error must not break the stream */
      }
      return;
    }
    const id = msg.id;
    const p = typeof id === "number" ? this.pending.get(id) : undefined;
    if (!p || typeof id !== "number") return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(Object.assign(new Error(oneLine(msg.error ?? "the sidecar refused the request")), { code: msg.code }));
  }

  /** Ask the sidecar; rejects on its error, on `timeoutMs`, and (with {@link Aborted}) when `signal` fires -
   *  an abandoned request's late answer is dropped. */
  request(op: string, fields: Record<string, unknown>, timeoutMs: number, signal?: AbortSignal): Promise<Json> {
    if (this.dead !== null || !this.child) return Promise.reject(new Error(this.dead ?? "the pi-mesh sidecar is not running"));
    if (signal?.aborted) return Promise.reject(new Aborted());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const p = this.pending.get(id);
        if (!p) return;
        clearTimeout(p.timer);
        this.pending.delete(id);
        reject(new Aborted());
      };
      const done = (settle: () => void) => {
        signal?.removeEventListener("abort", onAbort);
        settle();
      };
      const timer = setTimeout(() => {
        this.pending.delete(id);
        done(() => reject(new Error(`the pi-mesh sidecar did not answer ${op} within ${timeoutMs / 1000}s (sidecar_timeout)`)));
      }, timeoutMs); // deliberately ref'd: while a request is pending it keeps Node awake (cleared on the answer)
      this.pending.set(id, {
        resolve: (v) => done(() => resolve(v)),
        reject: (e) => done(() => reject(e)),
        timer,
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        this.child!.stdin!.write(JSON.stringify({ id, op, ...fields }) + "\n");
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new Error(`cannot write to the pi-mesh sidecar: ${oneLine((e as Error).message)}`));
      }
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.dead = this.dead ?? "the pi-mesh session has ended";
    try {
      child.stdin!.end();
    } catch {
      /* already closed */
    }
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch {
            /* gone */
          }
          resolve();
        }, 1500);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.child = null;
  }
}

export default function (pi: ExtensionAPI) {
  const sidecar = new Sidecar();
  let joined: Hello | null = null; // the hello result
  let joinError: string | null = null;
  let ready: Promise<void> | null = null;
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  // The tools the core says fail closed when the sidecar cannot be asked (guarded or denied), by exact name:
  // the core decides from hooks.toml; the extension holds no matcher of its own.
  let failClosed = new Set<string>(WRITERS_BEFORE_HELLO);
  let failOpen = false;
  const meshTools = new Set<string>();
  const seen = new Set<string>(); // message ids already handed to Pi this session
  let prompted = false; // has the agent run at least once in this session?

  /** Hand one message to Pi. Mail that was waiting when the session started (backlog) rides with the
   *  first prompt; anything else is steered in (urgent) or follows up the current work, waking the
   *  agent if it is idle. It is acked as delivered only when it reaches the context (message_end). */
  function deliver(value: Json, backlog: boolean): void {
    const ev = obj(value);
    if (typeof ev.id !== "string" || seen.has(ev.id)) return;
    seen.add(ev.id);
    const options = backlog && !prompted
      ? { deliverAs: "nextTurn" as const }
      : { deliverAs: ev.urgent ? ("steer" as const) : ("followUp" as const), triggerTurn: true };
    pi.sendMessage(
      { customType: CUSTOM_TYPE, content: String(ev.content ?? ev.text), display: true,
        details: { id: ev.id, from: ev.from, urgent: !!ev.urgent } },
      options,
    );
    sidecar.request("ack", { ids: [ev.id], stage: "queued" }, timeoutMs).catch(() => {});
  }

  sidecar.onEvent = (ev) => {
    if (obj(ev).event === "message") deliver(ev, false);
  };

  async function connect(cwd: string, model: string | undefined): Promise<void> {
    sidecar.start(cwd);
    let answer: Json;
    try {
      answer = await sidecar.request(
        "hello",
        { name: process.env.PI_MESH_AGENT || undefined, harness: "pi", model, pid: process.pid, cwd,
          offered: pi.getAllTools().map((t) => t.name) },
        HELLO_TIMEOUT_MS,
      );
    } catch (e) {
      joinError = `pi-mesh could not join the mesh: ${oneLine((e as Error).message)}`;
      return;
    }
    const a = obj(answer);
    joined = {
      agent: str(a.agent) ?? "?",
      unread: typeof a.unread === "number" ? a.unread : 0,
      sidecar_timeout: typeof a.sidecar_timeout === "number" ? a.sidecar_timeout : undefined,
      fail_closed: Array.isArray(a.fail_closed) ? a.fail_closed.filter((t): t is string => typeof t === "string") : undefined,
      hidden: list(a.hidden).filter((t): t is string => typeof t === "string"),
      on_store_error: str(a.on_store_error),
      tools: list(a.tools),
      backlog: list(a.backlog),
    };
    if (typeof joined.sidecar_timeout === "number" && joined.sidecar_timeout > 0) timeoutMs = joined.sidecar_timeout * 1000;
    if (Array.isArray(joined.fail_closed)) failClosed = new Set(joined.fail_closed);
    if (Array.isArray(joined.hidden) && joined.hidden.length) {
      // a tool the agent may not use is not offered to the model at all (and refused if called anyway)
      const hidden = new Set<string>(joined.hidden);
      pi.setActiveTools(pi.getActiveTools().filter((name) => !hidden.has(name)));
    }
    failOpen = joined.on_store_error === "allow";
    for (const tool of joined.tools ?? []) registerMeshTool(tool);
    for (const ev of joined.backlog ?? []) deliver(ev, true);
  }

  function registerMeshTool(spec: Json): void {
    const tool = obj(spec);
    const name = str(tool.name);
    if (!name) return;
    meshTools.add(name);
    const definition: ToolDefinition<ToolParams, { output: Json }> = {
      name,
      label: `mesh: ${name}`,
      description: str(tool.description) ?? name,
      // a JSON Schema from the sidecar; Pi validates arguments against it (TypeBox schemas are JSON Schemas)
      parameters: obj(tool.parameters) as ToolParams,
      async execute(_toolCallId, params, signal, _onUpdate, ctx) {
        // An abort (Esc, a steer) abandons the request: its late answer is dropped, the tool reports aborted.
        const result = obj(await sidecar.request("call_tool", { name, arguments: params ?? {}, cwd: ctx.cwd }, timeoutMs,
                                                 signal));
        return { content: [{ type: "text", text: String(result.text) }], details: { output: result.output } };
      },
    };
    pi.registerTool(definition);
  }

  pi.on("session_start", async (_event, ctx) => {
    // Awaited (Pi awaits it too), for at most START_HOLD_MS: normally the mesh tools are registered, and mail
    // that waited for this agent queued as "nextTurn", before the first prompt becomes a model request.  A
    // slower sidecar joins in the background; until it has, guarded calls fail closed (tool_call below).
    ready = connect(ctx.cwd, ctx.model?.id);
    let hold: NodeJS.Timeout | undefined;
    await Promise.race([ready, new Promise<void>((resolve) => { hold = setTimeout(resolve, START_HOLD_MS); })]);
    clearTimeout(hold);
    if (ctx.hasUI) {
      if (joined) ctx.ui.setStatus(CUSTOM_TYPE, `mesh: ${joined.agent}${joined.unread ? ` (${joined.unread} unread)` : ""}`);
      else ctx.ui.notify(joinError ?? "pi-mesh is not connected", "error");
    }
    // what the join said once (a name taken over, no shell sandbox here): on the UI, else on stderr
    for (const note of joined?.notices ?? []) {
      if (ctx.hasUI) ctx.ui.notify(`pi-mesh: ${note}`, "warning");
      else process.stderr.write(`pi-mesh: note: ${oneLine(note)}\n`);
    }
  });

  pi.on("tool_call", async (event, ctx) => {
    if (meshTools.has(event.toolName)) return undefined; // checked by the sidecar inside call_tool
    const guarded = failClosed.has(event.toolName);
    const input: JsonObject = { ...obj(event.input) };
    if (typeof input.path === "string") input.path = piPath(input.path);
    let answer: JsonObject;
    try {
      // never wait here for a slow hello: until it answers, guarded calls fail closed at once
      if (!joined) throw new Error(joinError ?? "the pi-mesh sidecar has not answered hello yet");
      answer = obj(await sidecar.request("pre_tool_call", { tool: event.toolName, input, cwd: ctx.cwd }, timeoutMs));
    } catch (e) {
      if (!guarded || failOpen) return undefined;
      return {
        block: true,
        reason:
          `BLOCKED: pi-mesh could not check this ${event.toolName} call: ${oneLine((e as Error).message)}. ` +
          `Guarded tools (${[...failClosed].join(", ")}) are blocked while the mesh cannot be asked (fail closed; ` +
          `on_store_error = "allow" in hooks.toml would let them through).` +
          (sidecar.dead !== null ? " Restart pi to reconnect." : ""),
      };
    }
    if (answer.allow === false) return { block: true, reason: String(answer.reason ?? obj(answer.block).message) };
    const rewritten = obj(answer.input);
    if (typeof rewritten.command === "string") {
      // the core wrapped the shell command in the sandbox: Pi runs event.input (a copy of the model's arguments)
      (event.input as JsonObject).command = rewritten.command;
    }
    return undefined;
  });

  pi.on("tool_result", async (event, ctx) => {
    if (!joined || sidecar.dead !== null || meshTools.has(event.toolName)) return undefined;
    sidecar
      .request("post_tool_call", { tool: event.toolName, input: event.input, ok: !event.isError, cwd: ctx.cwd }, timeoutMs)
      .catch(() => {});
    return undefined;
  });

  pi.on("agent_start", async () => {
    prompted = true;
    return undefined;
  });

  pi.on("message_end", async (event) => {
    const m = obj(event.message);
    const id = obj(m.details).id;
    if (m.role === "custom" && m.customType === CUSTOM_TYPE && typeof id === "string" && joined) {
      sidecar.request("ack", { ids: [id], stage: "delivered" }, timeoutMs).catch(() => {});
    }
    return undefined;
  });

  pi.registerCommand("mesh", {
    description: "pi-mesh: agents, claims and unread mail in this repository",
    handler: async (_args, ctx) => {
      let text: string;
      try {
        if (ready) await ready;
        if (!joined) throw new Error(joinError ?? "pi-mesh has not joined the mesh");
        text = String(obj(await sidecar.request("status", {}, timeoutMs)).text);
      } catch (e) {
        text = `pi-mesh: ${oneLine((e as Error).message)}`;
      }
      if (ctx.hasUI) ctx.ui.notify(text, "info");
      else {
        // print/json modes: stdout carries Pi's own output in json/rpc mode, so use stderr there
        const machine = process.argv.some((a, i) => a === "--mode" && ["json", "rpc"].includes(process.argv[i + 1]));
        (machine ? process.stderr : process.stdout).write(text + "\n");
      }
    },
  });

  pi.on("session_shutdown", async () => {
    if (joined && sidecar.dead === null) {
      try {
        await sidecar.request("leave", {}, Math.min(timeoutMs, 3000));
      } catch {
        /* the sidecar leaves at EOF anyway */
      }
    }
    joined = null;
    await sidecar.stop();
  });
}
