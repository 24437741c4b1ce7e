// HTTP Basic client authentication (RFC 7617) as OAuth clients send it to
// the introspection and revocation endpoints (RFC 6749 §2.3.1): the client
// name and the API key, each form-urlencoded, joined by a colon, in base64.

export interface BasicCredential {
  name: string;
  secret: string;
}

/** Reads "Basic <base64(name:secret)>"; undefined for any other shape. */
export function basicCredential(authorization: string | undefined): BasicCredential | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(authorization);
  if (match === null) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    const name = formDecode(decoded.slice(0, colon));
    const secret = formDecode(decoded.slice(colon + 1));
    return secret === '' ? undefined : { name, secret };
  } catch {
    // A stray "%" that is no escape: not a credential we can read.
    return undefined;
  }
}

function formDecode(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, ' '));
}
