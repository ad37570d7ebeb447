/**
 * pi-mesh: presence, messages and path reservations for Pi (installed by `pi-mesh install pi`).
 *
 * This extension only translates.  Every decision is made by the Python sidecar
 * (`pi-mesh serve`, one per session, JSON lines on its stdin/stdout):
 *
 *  - session_start: spawn the sidecar, `hello` (join the mesh, telling it Pi's tool names), register every
 *    tool it lists, and drop from Pi's active tools those the core says are denied to this agent;
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
import type { ExtensionAPI } from "@mariozechner/pi-coding-agent";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";

const CUSTOM_TYPE = "pi-mesh";
const HELLO_TIMEOUT_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 5_000;
// Until the sidecar has answered `hello` the configuration is unknown: Pi's own writing tools fail closed.
const WRITERS_BEFORE_HELLO = ["edit", "write", "bash"];

type Json = any;

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
    for (const s of [child.stdin, child.stdout, child.stderr] as any[]) s?.unref?.();
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
    let msg: Json;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // not ours
    }
    if (msg && typeof msg.event === "string") {
      try {
        this.onEvent(msg);
      } catch {
        /* an event handler error must not break the stream */
      }
      return;
    }
    const p = msg && typeof msg.id === "number" ? this.pending.get(msg.id) : undefined;
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(Object.assign(new Error(oneLine(msg.error ?? "the sidecar refused the request")), { code: msg.code }));
  }

  request(op: string, fields: Record<string, unknown>, timeoutMs: number): Promise<Json> {
    if (this.dead !== null || !this.child) return Promise.reject(new Error(this.dead ?? "the pi-mesh sidecar is not running"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the pi-mesh sidecar did not answer ${op} within ${timeoutMs / 1000}s (sidecar_timeout)`));
      }, timeoutMs); // deliberately ref'd: while a request is pending it keeps Node awake (cleared on the answer)
      this.pending.set(id, { resolve, reject, timer });
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
  let joined: Json = null; // the hello result
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
  function deliver(ev: Json, backlog: boolean): void {
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
    if (ev.event === "message") deliver(ev, false);
  };

  async function connect(cwd: string, model: string | undefined): Promise<void> {
    sidecar.start(cwd);
    try {
      joined = await sidecar.request(
        "hello",
        { name: process.env.PI_MESH_AGENT || undefined, harness: "pi", model, pid: process.pid, cwd,
          offered: pi.getAllTools().map((t) => t.name) },
        HELLO_TIMEOUT_MS,
      );
    } catch (e) {
      joinError = `pi-mesh could not join the mesh: ${oneLine((e as Error).message)}`;
      return;
    }
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

  function registerMeshTool(tool: Json): void {
    meshTools.add(tool.name);
    pi.registerTool({
      name: tool.name,
      label: `mesh: ${tool.name}`,
      description: tool.description,
      parameters: tool.parameters,
      async execute(_toolCallId: string, params: Json, _signal: AbortSignal | undefined, _onUpdate: unknown, ctx: Json) {
        const result = await sidecar.request("call_tool", { name: tool.name, arguments: params ?? {}, cwd: ctx?.cwd }, timeoutMs);
        return { content: [{ type: "text", text: String(result.text) }], details: { output: result.output } };
      },
    } as any);
  }

  pi.on("session_start", async (_event, ctx) => {
    // Awaited (Pi awaits it too): the mesh tools must be registered, and mail that waited for this agent
    // queued as "nextTurn", before the first prompt is turned into a model request.
    ready = connect(ctx.cwd, (ctx as Json).model?.id);
    await ready;
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
    const input: Json = { ...(event.input as Json) };
    if (typeof input.path === "string") input.path = piPath(input.path);
    let answer: Json;
    try {
      if (ready) await ready;
      if (!joined) throw new Error(joinError ?? "pi-mesh has not joined the mesh");
      answer = await sidecar.request("pre_tool_call", { tool: event.toolName, input, cwd: ctx.cwd }, timeoutMs);
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
    if (answer && answer.allow === false) return { block: true, reason: String(answer.reason ?? answer.block?.message) };
    if (answer && answer.input && typeof answer.input === "object" && typeof answer.input.command === "string") {
      // the core wrapped the shell command in the sandbox: Pi runs event.input (a copy of the model's arguments)
      (event.input as Json).command = answer.input.command;
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
    const m: Json = event.message;
    if (m?.role === "custom" && m.customType === CUSTOM_TYPE && typeof m.details?.id === "string" && joined) {
      sidecar.request("ack", { ids: [m.details.id], stage: "delivered" }, timeoutMs).catch(() => {});
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
        text = (await sidecar.request("status", {}, timeoutMs)).text;
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
