// Drives the UPYUN node SDK (npm `upyun` 3.4.x) through its own calls against a mediagate server,
// the way an application would: only the endpoint and the credentials differ from UPYUN's cloud.
//
//   node upyun_node_sdk.js <host:port> <bucket> <operator> <password> <workdir>
//
// Prints one JSON document: each call's result, as the SDK returned it, keyed by a step name.
// tests/compat/test_upyun_node_sdk.py runs it and asserts every result, then checks the server.
'use strict'

const fs = require('fs')
const path = require('path')
const crypto = require('crypto')
const upyun = require('upyun')

const [domain, bucket, operator, password, workdir] = process.argv.slice(2)
const client = new upyun.Client(new upyun.Service(bucket, operator, password), {
  domain,
  protocol: 'http'
})
const md5 = (data) => crypto.createHash('md5').update(data).digest('hex')

// deterministic bytes the python side can rebuild: byte i = (i * 7 + 3) % 251
function pattern (size) {
  const b = Buffer.alloc(size)
  for (let i = 0; i < size; i++) b[i] = (i * 7 + 3) % 251
  return b
}

async function main () {
  const out = {}
  const step = async (name, fn) => {
    try {
      out[name] = await fn()
    } catch (err) {
      out[name] = { error: String(err && err.message), code: err && err.code }
    }
  }

  await step('usage_before', () => client.usage())
  await step('makeDir', () => client.makeDir('/node/dir'))
  await step('putFile_text', () => client.putFile('/node/hello.txt', 'hello from the node sdk'))
  await step('putFile_chinese', () => client.putFile('/node/中文.txt', '中文测试'))
  await step('putFile_meta', () =>
    client.putFile('/node/meta.txt', 'with metadata', { 'x-upyun-meta-owner': 'alice' }))
  await step('putFile_image', () =>
    client.putFile('/node/dir/pixel.png', fs.readFileSync(path.join(workdir, 'pixel.png'))))
  await step('headFile', () => client.headFile('/node/hello.txt'))
  await step('headFile_dir', () => client.headFile('/node/dir'))
  await step('headFile_missing', () => client.headFile('/node/none.txt'))
  await step('getFile', () => client.getFile('/node/hello.txt'))
  await step('getFile_chinese', () => client.getFile('/node/中文.txt'))
  await step('getFile_stream', async () => {
    const target = path.join(workdir, 'pixel-back.png')
    await client.getFile('/node/dir/pixel.png', fs.createWriteStream(target))
    return md5(fs.readFileSync(target))
  })
  await step('getFile_missing', () => client.getFile('/node/none.txt'))
  await step('listDir', () => client.listDir('/node'))
  await step('listDir_paged', async () => {
    const first = await client.listDir('/node', { limit: 2 })
    const second = await client.listDir('/node', { limit: 2, iter: first.next })
    return { first: first.files.map((f) => f.name), second: second.files.map((f) => f.name) }
  })
  await step('listDir_missing', () => client.listDir('/no-such-dir'))

  // metadata: PATCH ?metadata=merge|replace|delete, read back with HEAD-less getMetadata (a GET)
  await step('updateMetadata_merge', () => client.updateMetadata('/node/meta.txt', { colour: 'red' }))
  await step('getMetadata_merged', () => client.getMetadata('/node/meta.txt'))
  await step('updateMetadata_replace', () =>
    client.updateMetadata('/node/meta.txt', { size: 'large' }, 'replace'))
  await step('getMetadata_replaced', () => client.getMetadata('/node/meta.txt'))
  await step('updateMetadata_delete', () =>
    client.updateMetadata('/node/meta.txt', { size: 'any' }, 'delete'))
  await step('getMetadata_deleted', () => client.getMetadata('/node/meta.txt'))
  await step('updateMetadata_missing', () => client.updateMetadata('/node/none.txt', { a: '1' }))

  await step('copy', () => client.copy('/node/copied.txt', '/node/hello.txt'))
  await step('copy_missing', () => client.copy('/node/x.txt', '/node/none.txt'))
  await step('move', () => client.move('/node/moved.txt', '/node/copied.txt'))
  await step('getFile_moved', () => client.getFile('/node/moved.txt'))
  await step('headFile_move_source', () => client.headFile('/node/copied.txt'))

  // parallel multi-part (initiate 204 with the uuid in a header, parts 204, complete 204/201)
  const big = pattern(2 * 1024 * 1024 + 333)
  await step('multipart', async () => {
    const init = await client.initMultipartUpload('/node/big.bin', big)
    if (!init) return { init }
    const parts = []
    for (let id = init.partCount - 1; id >= 0; id--) {
      parts.push(await client.multipartUpload('/node/big.bin', big, init.uuid, id))
    }
    const complete = await client.completeMultipartUpload('/node/big.bin', init.uuid)
    return { uuid: init.uuid, partCount: init.partCount, fileSize: init.fileSize, parts, complete }
  })
  await step('headFile_big', () => client.headFile('/node/big.bin'))

  // sequential multi-part from a file on disk, as large files are put
  const seqPath = path.join(workdir, 'large.bin')
  fs.writeFileSync(seqPath, pattern(3 * 1024 * 1024 + 1234))
  await step('blockUpload', () => client.blockUpload('/node/large.bin', seqPath))
  await step('headFile_large', () => client.headFile('/node/large.bin'))

  // FORM API: policy + authorization signed by the SDK itself
  await step('formPutFile', () =>
    client.formPutFile('/node/form.png', fs.createReadStream(path.join(workdir, 'pixel.png'))))
  // the SDK's own base64 test: content-md5 is the md5 of the base64 text it sends
  const encoded = 'dGVzdCBiYXNlNjQgdXBsb2Fk'
  await step('formPutFile_b64', () =>
    client.formPutFile('/node/b64.txt', encoded, {
      'content-type': 'text/plain',
      b64encoded: 'on',
      'content-md5': md5(encoded)
    }))
  await step('getFile_b64', () => client.getFile('/node/b64.txt'))

  await step('deleteFile', () => client.deleteFile('/node/hello.txt'))
  await step('headFile_deleted', () => client.headFile('/node/hello.txt'))
  await step('deleteDir_not_empty', () => client.deleteDir('/node/dir'))
  await step('deleteFile_in_dir', () => client.deleteFile('/node/dir/pixel.png'))
  await step('deleteDir', () => client.deleteDir('/node/dir'))
  await step('usage_after', () => client.usage())

  process.stdout.write(JSON.stringify(out))
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack) + '\n')
  process.exit(1)
})
