/** Applications: who may sign task requests and where their callbacks go. */
import { Secret } from '../sdk/index.ts';
import { JobsError } from './envelope.ts';
import type { AppCreateBody } from './schema.ts';
import { appPayload, newAppKey, newSecretKey, signedHeaders } from './sign.ts';

export interface Application {
  appKey: string;
  appName: string;
  /** md5(appName): what the payload header must carry. */
  payload: string;
  /** Shown once, in the create answer; a Secret, so it shows as *** anywhere else (logs, panels, JSON). */
  secretKey: Secret;
  linkUrl: string;
  step: number;
  retryTotal: number;
  remark: string;
  createdAt: number;
}

/**
 * The record to store and the answer to give (the original's field set: a ready header set signed now,
 * plus secretKey, which the original also returned). The header set is usable once, like any other.
 */
export function newApplication(body: AppCreateBody, existing: Iterable<Pick<Application, 'appKey' | 'appName'>>, now = Date.now()): { app: Application; answer: Record<string, string> } {
  const taken = new Set<string>();
  for (const a of existing) {
    if (a.appName === body.appName) throw new JobsError(`appName: "${body.appName}" is already taken by another application`);
    taken.add(a.appKey);
  }
  let appKey = newAppKey();
  while (taken.has(appKey)) appKey = newAppKey();
  const app: Application = { appKey, appName: body.appName, payload: appPayload(body.appName), secretKey: new Secret(newSecretKey()), linkUrl: body.linkUrl, step: body.step, retryTotal: body.retryTotal, remark: body.remark, createdAt: now };
  const secret = app.secretKey.reveal();
  const h = signedHeaders(appKey, app.appName, secret, now);
  return { app, answer: { nonce: h.nonce, timestamps: h.timestamps, signature: h.signature, appKey, payload: h.payload, secretKey: secret } };
}

/** What panels and listings may show of an application. */
export function applicationView(app: Application): Omit<Application, 'secretKey'> {
  const { secretKey: _secret, ...rest } = app;
  return rest;
}
