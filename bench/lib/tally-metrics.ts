// How many calls a Tally process answered, from its own Prometheus counter: what a
// CPU profile of the process is divided by. Read from /metrics rather than the call
// log, whose level and format are Tally's to choose.
const callsCounter = 'tally_calls_total';

/** The sum of tally_calls_total over every method, protocol and code; undefined when /metrics does not answer with it. */
export async function scrapeAnsweredCalls(httpOrigin: string): Promise<number | undefined> {
  try {
    const response = await fetch(`${httpOrigin}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (!response.ok) return undefined;
    let calls: number | undefined;
    for (const line of (await response.text()).split('\n')) {
      if (!line.startsWith(`${callsCounter}{`) && !line.startsWith(`${callsCounter} `)) continue;
      calls = (calls ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return calls;
  } catch {
    return undefined;
  }
}
