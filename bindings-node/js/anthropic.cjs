'use strict'
// The official `@anthropic-ai/sdk` clients (`Anthropic`, and `AnthropicBedrock` of the Bedrock SDK): what
// core needs to know about one. Which calls are tracked is core's decision (`classify`).

/** True for a client of the Anthropic SDKs. */
function owns(client) {
  return typeof client.messages === 'object' && client.messages !== null && !('chat' in client)
}

/** The client facts core classifies calls with (`ClientSpec`). */
function clientSpec(client) {
  return {
    sdk: 'anthropic',
    baseUrl: String(client.baseURL || ''),
    bedrock: Boolean(client.constructor && client.constructor.name === 'AnthropicBedrock'),
  }
}

function copyOptions() {
  return {}
}

module.exports = { owns, clientSpec, copyOptions }
