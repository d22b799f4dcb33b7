/** Jobs: recent jobs with their progress, cancel and download, and a form for a small render. */
import { useCallback, useEffect, useState } from "preact/hooks";
import type { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { type Job, JobKind, JobState } from "../../gen/voxgate/v1/job_pb.js";
import type { Voice } from "../../gen/voxgate/v1/voice_pb.js";
import type { VoxgateBrowserClient } from "../browser.js";
import { downloadBlob, extensionOf } from "./audio-player.js";
import { FormatSelect, StatusLines, VoiceSelect } from "./form-parts.js";
import { enumName, errorText, formatBytes } from "./format.js";
import { FORMATS } from "./playground-panel.js";

/** How often the list is refreshed, in ms. */
const REFRESH_MS = 1500;
/** Jobs shown: the newest ones. */
const PAGE_SIZE = 25;

const ACTIVE = new Set([JobState.QUEUED, JobState.RUNNING]);

/** The jobs table and the render form. */
export function JobsPanel(props: { client: VoxgateBrowserClient; voices: Voice[] }) {
  const { client } = props;
  const [jobs, setJobs] = useState<Job[]>([]);
  const [error, setError] = useState("");
  const [status, setStatus] = useState("");

  const refresh = useCallback(async () => {
    try {
      const { jobs } = await client.jobs.listJobs({ pageSize: PAGE_SIZE });
      setJobs(jobs);
      setError("");
    } catch (err) {
      setError(errorText(err));
    }
  }, [client]);

  useEffect(() => {
    refresh();
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") refresh();
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, [refresh]);

  async function render(event: Event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const segments = String(form.get("script") ?? "")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "")
      .map((text) => ({ text }));
    setError("");
    try {
      const { job } = await client.jobs.createJob({
        spec: {
          kind: {
            case: "render",
            value: {
              segments,
              defaultVoice: String(form.get("voice") ?? ""),
              encoding: Number(form.get("format")) as AudioEncoding,
            },
          },
        },
      });
      setStatus(`Job ${job?.id} created.`);
      await refresh();
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function cancel(job: Job) {
    try {
      await client.jobs.cancelJob({ jobId: job.id });
      await refresh();
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function download(job: Job) {
    try {
      const parts: Uint8Array<ArrayBuffer>[] = [];
      let contentType = job.output?.contentType ?? "";
      for await (const chunk of client.jobs.getJobOutput({ jobId: job.id }, { timeoutMs: 0 })) {
        contentType ||= chunk.contentType;
        parts.push(chunk.data as Uint8Array<ArrayBuffer>);
      }
      downloadBlob(new Blob(parts, { type: contentType }), `${job.id}.${extensionOf(contentType)}`);
    } catch (err) {
      setError(errorText(err));
    }
  }

  return (
    <section data-testid="jobs">
      <h2>Jobs</h2>
      <form onSubmit={render} class="grid" data-testid="render-form">
        <label class="wide">
          Script (one segment per line)
          <textarea name="script" rows={3} required>
            {"The first line of a short story.\nAnd the second line, in the same voice."}
          </textarea>
        </label>
        <VoiceSelect voices={props.voices} />
        <FormatSelect
          formats={FORMATS}
          labelOf={(label) => label.replace(" (plays while streaming)", "")}
        />
        <div class="wide">
          <button type="submit">Render</button>
        </div>
      </form>
      <StatusLines status={status} error={error} testId="jobs-status" />
      {jobs.length === 0 && !error && <p class="muted">No jobs yet.</p>}
      {jobs.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Job</th>
              <th>State</th>
              <th>Progress</th>
              <th>Output</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {jobs.map((job) => {
              const state = enumName(JobState, job.state);
              const done = job.progress?.doneUnits ?? 0;
              const total = job.progress?.totalUnits ?? 0;
              return (
                <tr key={job.id} data-job={job.id} data-state={state}>
                  <td>
                    <strong>{job.id}</strong>
                    <div class="muted">
                      {enumName(JobKind, job.kind).toLowerCase()}
                      {job.createTime
                        ? ` · ${new Date(Number(job.createTime.seconds) * 1000).toLocaleTimeString()}`
                        : ""}
                    </div>
                  </td>
                  <td>
                    <span class={`badge job-${state.toLowerCase()}`}>{state}</span>
                    {job.error && <div class="error small">{job.error.message}</div>}
                  </td>
                  <td>
                    <progress
                      max={total || 1}
                      value={job.state === JobState.SUCCEEDED ? total || 1 : done}
                    />
                    <div class="muted">
                      {done}/{total} {job.progress?.message}
                    </div>
                  </td>
                  <td>
                    {job.output
                      ? `${formatBytes(job.output.sizeBytes)}, ${(Number(job.output.durationMs) / 1000).toFixed(1)} s`
                      : "—"}
                  </td>
                  <td>
                    {ACTIVE.has(job.state) && (
                      <button type="button" onClick={() => cancel(job)}>
                        Cancel
                      </button>
                    )}
                    {job.state === JobState.SUCCEEDED && job.kind === JobKind.RENDER && (
                      <button type="button" onClick={() => download(job)} data-testid="download">
                        Download
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
