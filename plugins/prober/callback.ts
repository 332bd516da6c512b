/**
 * iplive's call_back_to_php: group_id, timestamp (round start, unix seconds) and result, a JSON
 * list of {record_id, status, res_time}. Like the seed's example, record_id and status are strings
 * and res_time a number of ms. Form-encoded (result as a JSON string field) or one JSON object.
 */
export function callbackBody(format: 'form' | 'json', groupId: string, timestamp: number, result: Array<{ record_id: string; status: number; res_time: number }>): { body: string; contentType: string } {
  const items = result.map((r) => ({ record_id: String(r.record_id), status: String(r.status), res_time: r.res_time }));
  if (format === 'json') return { body: JSON.stringify({ group_id: Number(groupId), timestamp, result: items }), contentType: 'application/json' };
  const form = new URLSearchParams({ group_id: groupId, timestamp: String(timestamp), result: JSON.stringify(items) });
  return { body: form.toString(), contentType: 'application/x-www-form-urlencoded' };
}
