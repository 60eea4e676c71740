// Drives the Shopee sandbox with @congminh1254/shopee-sdk, unchanged, as a seller's Node script would.
//
// Usage: node driver.mjs < plan.json (a part may be megabytes: too long for argv); prints one JSON object.
//   {"mode": "flow", ...}  init -> every part -> complete -> result until final -> update_item -> read back,
//                          with one explicit token refresh first and one forced by an expired token midway.
//   {"mode": "call", "manager": "mediaSpace", "method": "uploadVideoPart", "params": {...}, "buffers": [...]}
//                          one SDK call; "buffers" names params (base64 in the plan) sent as Buffers.
//   {"mode": "sign", "partner_key": ..., "bases": [[part, ...], ...]}
//                          the SDK's own signer (not exported, so imported by path) over each list of parts.
// SDK errors come back as {"error": ..., "message": ...}: the test decides what they mean.
// Tokens never reach stdout: only whether they changed.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

import { ShopeeSDK } from "@congminh1254/shopee-sdk";

const plan = JSON.parse(readFileSync(0, "utf8"));

function md5(buffer) {
  return createHash("md5").update(buffer).digest("hex");
}

async function connect() {
  // base_url is the SDK's option for a custom host; it signs url.pathname, so the emulator serves /api/v2 at root.
  const sdk = new ShopeeSDK({
    partner_id: plan.partner_id,
    partner_key: plan.partner_key,
    shop_id: plan.shop_id,
    base_url: plan.base_url,
  });
  await sdk.tokenStorage.store({
    access_token: plan.access_token,
    refresh_token: plan.refresh_token,
    shop_id: plan.shop_id,
    expire_in: 14400,
    expired_at: Date.now() + 14400 * 1000 - 60 * 1000,
  });
  return sdk;
}

function failure(error) {
  // The package does not export its error classes; ShopeeApiError carries the HTTP status and the body.
  if (error?.name === "ShopeeApiError") {
    return { error: error.data?.error ?? "", message: error.data?.message ?? "", status: error.status };
  }
  return { error: "sdk_error", message: String(error?.message ?? error) };
}

async function flow(sdk) {
  const out = { statuses: [] };
  const first = await sdk.getAuthToken();
  const refreshed = await sdk.refreshToken();
  out.refresh = {
    rotated: refreshed.access_token !== first.access_token && refreshed.refresh_token !== first.refresh_token,
    expire_in: refreshed.expire_in,
    shop_id: refreshed.shop_id,
  };

  const data = readFileSync(plan.video_path);
  const init = await sdk.mediaSpace.initVideoUpload({ file_md5: md5(data), file_size: data.length });
  const id = init.response.video_upload_id;
  out.video_upload_id = id;

  const started = Date.now();
  const seqs = [];
  for (let seq = 0, offset = 0; offset < data.length; seq += 1, offset += plan.part_bytes) {
    const part = data.subarray(offset, offset + plan.part_bytes);
    const answer = await sdk.mediaSpace.uploadVideoPart({
      video_upload_id: id,
      part_seq: seq,
      content_md5: md5(part),
      part_content: part,
    });
    if (answer.error) throw new Error(`part ${seq}: ${answer.error}`);
    seqs.push(seq);
  }
  out.parts = seqs.length;
  await sdk.mediaSpace.completeVideoUpload({
    video_upload_id: id,
    part_seq_list: seqs,
    report_data: { upload_cost: Date.now() - started },
  });

  // Every access token expires now: the next call is refused and the SDK refreshes and sends it again.
  const expired = await fetch(`${plan.sandbox_url}/_sandbox/shopee/tokens/expire`, { method: "POST" });
  out.expired_tokens = (await expired.json()).expired;
  const before = await sdk.getAuthToken();

  const deadline = Date.now() + plan.timeout_ms;
  let result;
  for (;;) {
    result = (await sdk.mediaSpace.getVideoUploadResult({ video_upload_id: id })).response;
    if (out.statuses.at(-1) !== result.status) out.statuses.push(result.status);
    if (["SUCCEEDED", "FAILED", "CANCELLED"].includes(result.status) || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, plan.poll_ms));
  }
  out.auto_refreshed = (await sdk.getAuthToken()).access_token !== before.access_token;
  out.result = result;

  const item = await sdk.product.addItem(plan.item);
  out.item_id = item.response.item_id;
  const updated = await sdk.product.updateItem({ item_id: out.item_id, video_upload_id: [id] });
  out.updated_video_info = updated.response.video_info;
  const read = await sdk.product.getItemBaseInfo({ item_id_list: [out.item_id] });
  out.item = read.response.item_list[0];
  return out;
}

async function call(sdk) {
  const params = { ...plan.params };
  for (const name of plan.buffers ?? []) params[name] = Buffer.from(params[name], "base64");
  return await sdk[plan.manager][plan.method](params);
}

async function signs() {
  const signer = new URL("./node_modules/@congminh1254/shopee-sdk/lib/utils/signature.js", import.meta.url);
  const { generateSignature } = await import(signer);
  return plan.bases.map((parts) => generateSignature(plan.partner_key, parts));
}

try {
  const modes = { flow: async () => flow(await connect()), call: async () => call(await connect()), sign: signs };
  const result = await modes[plan.mode]();
  process.stdout.write(JSON.stringify({ ok: true, result }));
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, ...failure(error) }));
}
