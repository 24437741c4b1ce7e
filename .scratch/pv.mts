import { create } from '/work/main/node_modules/@bufbuild/protobuf/dist/esm/index.js';
import { IntrospectRequestSchema } from '/work/main/src/gen/tally/v1/token_service_pb.ts';
import { createRequestValidator } from '/work/main/src/transport/validate.ts';
const v = createRequestValidator();
for (const init of [{token:''},{token:'x'.repeat(65537)},{token:'a',audience:'x'.repeat(257)},{token:'a',requiredScopes:Array(65).fill('a')},{token:'a',requiredScopes:['']},{token:'a',requiredScopes:['x'.repeat(129)]},{token:'a',requiredScopes:['a','x'.repeat(129)]}]) {
  try { v(IntrospectRequestSchema, create(IntrospectRequestSchema, init)); console.log('ok'); } catch (e) { console.log(JSON.stringify((e as Error).message)); }
}
const N=200000; const m = create(IntrospectRequestSchema,{token:'tly_'+'a'.repeat(49)});
let t=performance.now(); for (let i=0;i<N;i++) v(IntrospectRequestSchema,m); console.log('µs/validate', (performance.now()-t)*1000/N);
