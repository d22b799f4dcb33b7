import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type CreateJobRequest, RenderSegmentSchema } from "../../gen/voxgate/v1/job_pb.js";
import { isSfmlParseError, parseSfml, type SfmlCastVoice, sfmlToSegments } from "../sfml/index.js";

/**
 * Expands a render spec given as SFML (`render.sfml` + `render.cast`) into its segments, in place:
 * one segment per bullet, SFML pauses as silences after the segment before them (see
 * `sfmlToSegments`); `sfml` and `cast` are cleared so the stored job holds only segments. The
 * script is read tolerantly (STORYFORGE.md §4.2); a speaker's voice is `cast[<name>]`, else
 * `cast[<its SFML voice id>]`. Other specs are left alone.
 *
 * @returns the parse warnings (faults the tolerant reading accepted), empty for other specs.
 * @throws ConnectError INVALID_ARGUMENT naming the line, column and rule of a parse error, a
 * speaker without a voice, or segments given together with sfml.
 */
export function expandSfmlRender(request: CreateJobRequest): string[] {
  const kind = request.spec?.kind;
  if (kind?.case !== "render" || !kind.value.sfml) return [];
  const spec = kind.value;
  if (spec.segments.length > 0) {
    throw new ConnectError("render: set either segments or sfml, not both", Code.InvalidArgument);
  }
  let parsed: ReturnType<typeof parseSfml>;
  try {
    parsed = parseSfml(spec.sfml);
  } catch (err) {
    if (isSfmlParseError(err)) {
      throw new ConnectError(`render.sfml ${err.message}`, Code.InvalidArgument);
    }
    throw err;
  }
  const voices: Record<string, SfmlCastVoice> = {};
  const missing: string[] = [];
  for (const member of parsed.script.cast) {
    const voice = spec.cast[member.name] ?? spec.cast[member.voiceId];
    if (voice?.voice) voices[member.name] = { voice: voice.voice, engine: voice.engine };
    else missing.push(`${member.name} (${member.voiceId})`);
  }
  const used = new Set(
    parsed.script.scenes.flatMap((scene) =>
      scene.items.flatMap((item) => (item.kind === "speaker" ? [item.name] : [])),
    ),
  );
  const unvoiced = missing.filter((m) => used.has(m.slice(0, m.indexOf(" ("))));
  if (unvoiced.length > 0) {
    throw new ConnectError(
      `render.cast has no voice for ${unvoiced.join(", ")}; map each speaker name (or its SFML voice id) to {voice, engine}`,
      Code.InvalidArgument,
    );
  }
  const segments = sfmlToSegments(parsed.script, voices);
  if (segments.length === 0) {
    throw new ConnectError("render.sfml has no spoken line", Code.InvalidArgument);
  }
  spec.segments = segments.map((segment) => create(RenderSegmentSchema, segment));
  spec.sfml = "";
  spec.cast = {};
  return parsed.warnings.map((w) => `line ${w.line}: ${w.rule}: ${w.message}`);
}
