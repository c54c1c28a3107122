'use strict'
// The official `openai` SDK's clients (`OpenAI`, `AzureOpenAI`, and `OpenAI` pointed at xAI or another
// OpenAI-compatible endpoint): what core needs to know about one, and how to make a tracked copy of it.
// Which calls are tracked is core's decision (`classify`), from the request's method and path.

/** True for a client of the `openai` SDK. */
function owns(client) {
  return typeof client.chat === 'object' && client.chat !== null
}

function isAzure(client) {
  return typeof client.apiVersion === 'string' && 'deploymentName' in client
}

/** The client facts core classifies calls with (`ClientSpec`). */
function clientSpec(client) {
  const azure = isAzure(client)
  return {
    sdk: 'openai',
    baseUrl: String(client.baseURL || ''),
    azure,
    azureDeployment: azure && typeof client.deploymentName === 'string' ? client.deploymentName : undefined,
  }
}

/**
 * Options `withOptions` needs to rebuild `client`: the Azure constructor requires its `apiVersion` (and
 * `deployment`), which the SDK does not carry over itself.
 */
function copyOptions(client) {
  return isAzure(client) ? { apiVersion: client.apiVersion, deployment: client.deploymentName } : {}
}

module.exports = { owns, clientSpec, copyOptions }
